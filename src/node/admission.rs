//! Link security inside the node: which neighbours are admitted, and the sealing of every
//! frame to them.
//!
//! A node with an identity ([`Trust`]) multicasts a clear-text beacon each hello round. The
//! node with the lower id of a pair answers a beacon with the handshake of
//! [`crate::secure::handshake`], cut into MTU-sized fragments. Once a peer is admitted, the
//! routing protocol above runs unchanged, except that what it sends is sealed here on the way
//! out, in [`Node::poll_transmit`]: a multicast frame becomes one sealed unicast copy per
//! admitted peer on that interface (as in Babel over DTLS, RFC 8968), and what it receives
//! was opened here first. A clear-text control or data frame, a frame that fails
//! authentication, and a replay are counted and dropped before any protocol logic sees them.
//!
//! Every table is bounded: peers by `limits.max_neighbours` (a record that is neither
//! admitted nor mid-handshake is evicted first), handshake resends by
//! `security.handshake_retries`, and the handshakes this node answers by
//! `security.handshakes_per_s`, because each answer costs a signature.

use super::outbox::{Outbox, TrafficClass, Transmit};
use super::{Misbehaviour, NEIGHBOUR_GC_HELLOS, Node};
use crate::config::SecurityConfig;
use crate::ids::{Dest, IfIndex, NodeId, PeerAddr};
use crate::pq::{CryptoRng, KeyId};
use crate::secure::handshake::{self, Admitted, HandshakeError, Initiator, MessageKind, Responder};
use crate::secure::session::{OpenError, RekeyPolicy, SealedHeader, Session};
use crate::secure::{Refusal, Trust};
use crate::time::Instant;
use crate::wire::{self, FrameKind, Fragment, Header};

/// Without an authenticated frame from an admitted peer for this many hellos, its lower-id
/// side starts a fresh handshake on the next beacon: the peer may have dropped the session
/// (its side of a one-way link failure outlived `NEIGHBOUR_GC_HELLOS`). Far longer than a
/// partition that heals on its own, so a healed link goes on with the session it had
/// instead of pausing for a handshake.
const STALE_LINK_HELLOS: u32 = NEIGHBOUR_GC_HELLOS / 2;

pub(crate) struct Security {
    trust: Trust,
    rng: CryptoRng,
    peers: Vec<Option<Peer>>,
    /// The multicast frame in `plain` being sealed once per admitted peer on its interface.
    fanout: Option<FanOut>,
    /// A clear frame taken from the outbox, on its way to being sealed.
    plain: Vec<u8>,
    /// The decrypted inner frame of the sealed frame being received.
    opened: Vec<u8>,
    /// Handshake fragments are encoded here.
    fragment: Vec<u8>,
    /// Handshakes this node may still answer now, in thousandths.
    tokens_milli: u64,
    refilled_at: Instant,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security").field("peers", &self.peers.iter().flatten().count()).finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug)]
struct FanOut {
    iface: IfIndex,
    class: TrafficClass,
    next: usize,
}

struct Peer {
    iface: IfIndex,
    id: NodeId,
    addr: PeerAddr,
    link: Option<Link>,
    /// The session a re-handshake replaced: frames the peer sealed before it switched still
    /// open, until one opens under the new session.
    retired: Option<Session>,
    pending: Pending,
    inbox: Reassembly,
    /// Last frame of any kind from this peer.
    heard_at: Instant,
    /// Last frame that opened.
    authentic_at: Instant,
    /// After an abandoned attempt, none is started before this.
    retry_after: Instant,
}

struct Link {
    session: Session,
    incarnation: u32,
    key: KeyId,
    /// The peer is known to hold this session: the responder knows at once (the Finish
    /// proves it); the initiator when a frame from the peer opens. Frames to a peer that
    /// may not hold the session yet would only be counted there as unauthenticated.
    confirmed: bool,
}

enum Pending {
    None,
    /// We sent Init and wait for the Reply.
    Init { state: Initiator, sends: u8, next_at: Instant },
    /// We sent Finish and wait for a sealed frame that shows the peer took it.
    Finish { message: Vec<u8>, sends: u8, next_at: Instant },
    /// We sent Reply and wait for the Finish.
    Reply { state: Responder, expires_at: Instant },
}

impl Pending {
    fn deadline(&self) -> Instant {
        match self {
            Pending::None => Instant::NEVER,
            Pending::Init { next_at, .. } | Pending::Finish { next_at, .. } => *next_at,
            Pending::Reply { expires_at, .. } => *expires_at,
        }
    }
}

/// One handshake message being put back together from its fragments.
#[derive(Default)]
struct Reassembly {
    buf: Vec<u8>,
    kind: u8,
    len: u16,
    have: u8,
}

impl Reassembly {
    /// Adds a fragment; returns true when the message is complete in `buf`. A fragment of
    /// another message (kind or length differ) starts over: a peer sends one at a time.
    fn add(&mut self, f: &Fragment<'_>) -> bool {
        if f.message_kind != self.kind || f.message_len != self.len || self.buf.len() != usize::from(f.message_len) {
            self.kind = f.message_kind;
            self.len = f.message_len;
            self.have = 0;
            self.buf.clear();
            self.buf.resize(usize::from(f.message_len), 0);
        }
        let start = usize::from(f.index) * wire::HANDSHAKE_CHUNK_LEN;
        self.buf[start..start + f.chunk.len()].copy_from_slice(f.chunk);
        self.have |= 1 << f.index;
        let count = Fragment::count(usize::from(self.len));
        u32::from(self.have) == (1u32 << count) - 1
    }

    /// Frees the buffer: an admitted peer sends no more handshake messages for a long time.
    fn clear(&mut self) {
        *self = Reassembly::default();
    }
}

impl Security {
    pub fn new(trust: Trust, crypto_seed: [u8; 32], cfg: &SecurityConfig, now: Instant) -> Self {
        Security {
            trust,
            rng: CryptoRng::from_seed(crypto_seed),
            peers: Vec::new(),
            fanout: None,
            plain: Vec::with_capacity(wire::MAX_FRAME_LEN),
            opened: Vec::with_capacity(wire::MAX_FRAME_LEN),
            fragment: Vec::with_capacity(wire::MAX_FRAME_LEN),
            tokens_milli: u64::from(cfg.handshakes_per_s) * 1000,
            refilled_at: now,
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.peers.capacity() * size_of::<Option<Peer>>()
            + self.peers.iter().flatten().map(|p| p.inbox.buf.capacity()).sum::<usize>()
            + self.plain.capacity()
            + self.opened.capacity()
            + self.fragment.capacity()
    }

    /// When a handshake next needs a resend or expires.
    pub fn next_deadline(&self) -> Instant {
        self.peers.iter().flatten().map(|p| p.pending.deadline()).min().unwrap_or(Instant::NEVER)
    }

    /// `now` on the mesh's clock in seconds, which certificate expiry is judged on.
    fn now_s(&self, now: Instant) -> u64 {
        self.trust.clock_origin_s + now.as_nanos() / 1_000_000_000
    }

    fn find(&self, iface: IfIndex, id: NodeId) -> Option<usize> {
        self.peers.iter().position(|p| p.as_ref().is_some_and(|p| p.iface == iface && p.id == id))
    }

    fn peer(&mut self, slot: usize) -> &mut Peer {
        self.peers[slot].as_mut().expect("peer slot in use")
    }

    /// Takes a handshake token, if one is left at `now`.
    fn take_token(&mut self, now: Instant, per_s: u32) -> bool {
        let burst_milli = u64::from(per_s) * 1000;
        let elapsed_us = now.saturating_since(self.refilled_at).as_micros().min(u128::from(u64::MAX)) as u64;
        self.tokens_milli = (self.tokens_milli + elapsed_us.saturating_mul(u64::from(per_s)) / 1000).min(burst_milli);
        self.refilled_at = now;
        if self.tokens_milli < 1000 {
            return false;
        }
        self.tokens_milli -= 1000;
        true
    }
}

/// Why a security input was dropped, for the counters.
enum Dismissal {
    Refused(Refusal),
    /// A signature that does not verify: the sender does not hold the key it presents.
    Unproven,
    Rejected,
}

impl From<HandshakeError> for Dismissal {
    fn from(e: HandshakeError) -> Self {
        match e {
            HandshakeError::Refused(r) => Dismissal::Refused(r),
            HandshakeError::BadSignature(_) => Dismissal::Unproven,
            HandshakeError::Malformed(_) | HandshakeError::BadKemKey(_) => Dismissal::Rejected,
        }
    }
}

fn seal_into(link: &mut Link, sender: NodeId, now: Instant, plain: &[u8], out: &mut Vec<u8>) {
    let h = link.session.next_header(now);
    let aad_len = wire::begin_sealed(out, sender, h.epoch, h.counter, plain);
    let (aad, body) = out.split_at_mut(aad_len);
    let tag = link.session.seal(h, aad, body);
    wire::finish_sealed(out, &tag);
}

/// Queues every fragment of `message` for `addr`.
fn send_message(outbox: &mut Outbox, scratch: &mut Vec<u8>, sender: NodeId, iface: IfIndex, addr: PeerAddr, message: &[u8]) {
    for i in 0..Fragment::count(message.len()) {
        wire::encode_fragment(scratch, sender, message, i);
        outbox.push_frame(iface, Dest::Unicast(addr), TrafficClass::Handshake, scratch);
    }
}

impl Node {
    fn rekey_policy(&self) -> RekeyPolicy {
        RekeyPolicy { frames: self.cfg.security.rekey_frames, interval: self.cfg.security.rekey_interval }
    }

    /// Multicasts a beacon on `iface`.
    pub(super) fn send_beacon(&mut self, iface: IfIndex) {
        let Some(sec) = self.security.as_mut() else { return };
        wire::encode_beacon(&mut sec.fragment, self.id, self.incarnation);
        self.outbox.push_frame(iface, Dest::Multicast, TrafficClass::Handshake, &sec.fragment);
    }

    /// A frame from a node we may or may not have admitted; `frame` is the whole datagram
    /// and `body` its body, both through [`wire::decode_frame`].
    pub(super) fn secure_frame(&mut self, iface: IfIndex, src: PeerAddr, hdr: Header, frame: &[u8], body: &[u8]) {
        match hdr.kind {
            FrameKind::Control | FrameKind::Data => self.stats.unauthenticated_rx += 1,
            FrameKind::Beacon => match wire::decode_beacon(body) {
                Ok(incarnation) => self.on_beacon(iface, src, hdr.sender, incarnation),
                Err(e) => self.malformed(iface, src, e),
            },
            FrameKind::Handshake => match wire::decode_fragment(body) {
                Ok(f) => self.on_fragment(iface, src, hdr.sender, &f),
                Err(e) => self.malformed(iface, src, e),
            },
            FrameKind::Sealed => match wire::decode_sealed(frame) {
                Ok(s) => self.on_sealed(iface, src, hdr.sender, &s),
                Err(e) => self.malformed(iface, src, e),
            },
        }
    }

    /// The peer record for (`iface`, `id`), made if there is none and room can be found:
    /// a free slot, a new one under the limit, or the longest-silent record that is neither
    /// admitted nor mid-handshake (so a flood of made-up senders cannot crowd out peers).
    fn peer_slot(&mut self, iface: IfIndex, id: NodeId, src: PeerAddr) -> Option<usize> {
        let now = self.now;
        let sec = self.security.as_mut().expect("secure node");
        if let Some(s) = sec.find(iface, id) {
            let p = sec.peer(s);
            p.heard_at = now;
            if p.link.is_none() {
                p.addr = src;
            }
            return Some(s);
        }
        let free = sec.peers.iter().position(Option::is_none);
        let slot = match free {
            Some(s) => s,
            None if sec.peers.len() < usize::from(self.cfg.limits.max_neighbours) => {
                sec.peers.push(None);
                sec.peers.len() - 1
            }
            None => {
                let idle = sec
                    .peers
                    .iter()
                    .enumerate()
                    .filter_map(|(i, p)| p.as_ref().map(|p| (i, p)))
                    .filter(|(_, p)| p.link.is_none() && matches!(p.pending, Pending::None))
                    .min_by_key(|(_, p)| p.heard_at)
                    .map(|(i, _)| i);
                match idle {
                    Some(s) => s,
                    None => {
                        self.stats.neighbour_table_full += 1;
                        return None;
                    }
                }
            }
        };
        sec.peers[slot] = Some(Peer {
            iface,
            id,
            addr: src,
            link: None,
            retired: None,
            pending: Pending::None,
            inbox: Reassembly::default(),
            heard_at: now,
            authentic_at: now,
            retry_after: Instant::ZERO,
        });
        Some(slot)
    }

    fn on_beacon(&mut self, iface: IfIndex, src: PeerAddr, sender: NodeId, incarnation: u32) {
        // The higher id of a pair answers; it keeps no record until the handshake starts.
        if self.id > sender {
            return;
        }
        let Some(slot) = self.peer_slot(iface, sender, src) else { return };
        let (now, stale_after) = (self.now, self.cfg.hello_interval * STALE_LINK_HELLOS);
        let sec = self.security.as_mut().expect("secure node");
        let p = sec.peer(slot);
        let wanted = match &p.link {
            None => true,
            Some(l) => l.incarnation != incarnation || now.saturating_since(p.authentic_at) > stale_after,
        };
        if wanted && matches!(p.pending, Pending::None) && now >= p.retry_after {
            self.start_handshake(slot);
        }
    }

    fn start_handshake(&mut self, slot: usize) {
        let (now, incarnation, timeout) = (self.now, self.incarnation, self.cfg.security.handshake_timeout);
        let sec = self.security.as_mut().expect("secure node");
        let (iface, addr, id) = {
            let p = sec.peer(slot);
            (p.iface, p.addr, p.id)
        };
        let state = Initiator::start(&sec.trust, &mut sec.rng, id, incarnation);
        send_message(&mut self.outbox, &mut sec.fragment, self.id, iface, addr, state.message());
        sec.peer(slot).pending = Pending::Init { state, sends: 1, next_at: now + timeout };
        self.stats.handshakes_started += 1;
    }

    fn on_fragment(&mut self, iface: IfIndex, src: PeerAddr, sender: NodeId, f: &Fragment<'_>) {
        let Some(slot) = self.peer_slot(iface, sender, src) else { return };
        let sec = self.security.as_mut().expect("secure node");
        let p = sec.peer(slot);
        if !p.inbox.add(f) {
            return;
        }
        let message = std::mem::take(&mut p.inbox.buf);
        let result = self.on_message(slot, sender, &message);
        let sec = self.security.as_mut().expect("secure node");
        let p = sec.peer(slot);
        if p.link.is_some() && matches!(p.pending, Pending::None) {
            p.inbox.clear();
        } else {
            // Keep the buffer for the next message, but not this one's bytes.
            p.inbox = Reassembly { buf: message, ..Reassembly::default() };
            p.inbox.buf.clear();
        }
        match result {
            Ok(()) => {}
            Err(Dismissal::Refused(r)) => {
                self.stats.identities_refused += 1;
                self.stats.last_refusal = Some(r);
                if r.is_false_claim() {
                    self.evidence(iface, src, Misbehaviour::Impersonation);
                }
            }
            Err(Dismissal::Rejected) => self.stats.handshakes_rejected += 1,
            Err(Dismissal::Unproven) => {
                self.stats.handshakes_rejected += 1;
                self.evidence(iface, src, Misbehaviour::Impersonation);
            }
        }
    }

    /// A complete handshake message from `sender`.
    fn on_message(&mut self, slot: usize, sender: NodeId, msg: &[u8]) -> Result<(), Dismissal> {
        let route = handshake::route(msg)?;
        let (now, rekey, timeout, retries) = (
            self.now,
            self.rekey_policy(),
            self.cfg.security.handshake_timeout,
            self.cfg.security.handshake_retries,
        );
        let sec = self.security.as_mut().expect("secure node");
        let now_s = sec.now_s(now);
        let (iface, addr) = (sec.peer(slot).iface, sec.peer(slot).addr);
        match route.kind {
            MessageKind::Init => {
                // Only the lower id initiates: an Init from the higher id is not ours to
                // answer (and answering would race our own Init).
                if route.initiator != sender || route.responder != self.id || sender > self.id {
                    return Err(Dismissal::Rejected);
                }
                if let Pending::Reply { state, .. } = &sec.peers[slot].as_ref().expect("peer slot in use").pending
                    && state.answers(msg)
                {
                    // Our Reply was lost: the same answer again, with no new signature.
                    send_message(&mut self.outbox, &mut sec.fragment, self.id, iface, addr, state.message());
                    return Ok(());
                }
                if !sec.take_token(now, self.cfg.security.handshakes_per_s) {
                    self.stats.handshakes_rate_limited += 1;
                    return Ok(());
                }
                let state = Responder::respond(&sec.trust, &mut sec.rng, self.incarnation, now_s, msg)?;
                send_message(&mut self.outbox, &mut sec.fragment, self.id, iface, addr, state.message());
                let expires_at = now + timeout * (u32::from(retries) + 2);
                sec.peer(slot).pending = Pending::Reply { state, expires_at };
            }
            MessageKind::Reply => {
                if route.responder != sender || route.initiator != self.id {
                    return Err(Dismissal::Rejected);
                }
                let Pending::Init { state, .. } = &sec.peers[slot].as_ref().expect("peer slot in use").pending else {
                    // A late copy of a Reply we already took.
                    return Ok(());
                };
                let (admitted, finish) = state.finish(&sec.trust, &mut sec.rng, rekey, now, now_s, msg)?;
                send_message(&mut self.outbox, &mut sec.fragment, self.id, iface, addr, &finish);
                sec.peer(slot).pending = Pending::Finish { message: finish, sends: 1, next_at: now + timeout };
                self.install(slot, admitted, false);
            }
            MessageKind::Finish => {
                if route.initiator != sender || route.responder != self.id {
                    return Err(Dismissal::Rejected);
                }
                let Pending::Reply { state, .. } = &sec.peers[slot].as_ref().expect("peer slot in use").pending else {
                    // A resent Finish for a session we hold: the initiator has not heard
                    // from us yet, and our next hello tells it.
                    return Ok(());
                };
                let admitted = state.complete(rekey, now, msg)?;
                sec.peer(slot).pending = Pending::None;
                self.install(slot, admitted, true);
                // Our hello is the initiator's proof that we hold the session.
                self.send_hello(iface);
            }
        }
        Ok(())
    }

    fn install(&mut self, slot: usize, a: Admitted, confirmed: bool) {
        let sec = self.security.as_mut().expect("secure node");
        let p = sec.peer(slot);
        debug_assert_eq!(a.peer, p.id, "the handshake admits the peer it was run with");
        let link = Link { session: a.session, incarnation: a.peer_incarnation, key: a.peer_key, confirmed };
        p.retired = p.link.replace(link).map(|l| l.session);
        p.authentic_at = self.now;
        self.stats.handshakes_completed += 1;
    }

    fn on_sealed(&mut self, iface: IfIndex, src: PeerAddr, sender: NodeId, s: &wire::Sealed<'_>) {
        let now = self.now;
        let sec = self.security.as_mut().expect("secure node");
        let Some(slot) = sec.find(iface, sender).filter(|&i| sec.peers[i].as_ref().is_some_and(|p| p.link.is_some()))
        else {
            self.stats.unauthenticated_rx += 1;
            return;
        };
        let mut opened = std::mem::take(&mut sec.opened);
        let header = SealedHeader { epoch: s.epoch, counter: s.counter };
        let p = sec.peer(slot);
        let link = p.link.as_mut().expect("filtered on link");
        opened.clear();
        opened.extend_from_slice(s.ciphertext);
        let mut result = link.session.open(header, s.aad, &mut opened, &s.tag);
        let mut under_current = result.is_ok();
        if matches!(result, Err(OpenError::Forged | OpenError::UnknownEpoch { .. }))
            && let Some(old) = p.retired.as_mut()
        {
            opened.clear();
            opened.extend_from_slice(s.ciphertext);
            result = old.open(header, s.aad, &mut opened, &s.tag);
            under_current = false;
        }
        match result {
            Err(OpenError::Forged | OpenError::UnknownEpoch { .. }) => self.stats.forged_rx += 1,
            Err(OpenError::Replayed(_) | OpenError::TooOld { .. }) => {
                self.stats.replayed_rx += 1;
                self.security.as_mut().expect("secure node").opened = opened;
                return self.evidence(iface, src, Misbehaviour::Replay);
            }
            Ok(()) => {
                p.addr = src;
                p.heard_at = now;
                p.authentic_at = now;
                if under_current {
                    p.retired = None;
                    let link = p.link.as_mut().expect("filtered on link");
                    link.confirmed = true;
                    if matches!(p.pending, Pending::Finish { .. }) {
                        p.pending = Pending::None;
                        p.inbox.clear();
                    }
                }
                self.inner_frame(iface, src, sender, &opened);
            }
        }
        self.security.as_mut().expect("secure node").opened = opened;
    }

    /// A control or data frame that arrived sealed and opened: from here on it is handled
    /// exactly as on a mesh without link security.
    fn inner_frame(&mut self, iface: IfIndex, src: PeerAddr, sender: NodeId, inner: &[u8]) {
        let kind = match wire::inner_kind(inner[0]) {
            Ok(k) => k,
            Err(e) => return self.decode_error(e),
        };
        self.plain_frame(iface, src, Header { kind, sender }, &inner[1..]);
    }

    /// Opens a sealed frame this node sent to `addr` on `iface`, quoted back by an
    /// unreachable report, and returns its inner frame; `None` unless it authenticates
    /// under the session with the admitted peer there. Only a party that saw the frame
    /// can quote it, so a forged report costs the reporter that much.
    pub(super) fn open_own(&mut self, iface: IfIndex, addr: PeerAddr, s: &wire::Sealed<'_>) -> Option<&[u8]> {
        let sec = self.security.as_mut()?;
        let link = sec.peers.iter().flatten().find(|p| p.iface == iface && p.addr == addr)?.link.as_ref()?;
        sec.opened.clear();
        sec.opened.extend_from_slice(s.ciphertext);
        let header = SealedHeader { epoch: s.epoch, counter: s.counter };
        link.session.open_own(header, s.aad, &mut sec.opened, &s.tag).ok()?;
        Some(&sec.opened)
    }

    /// Handshake resends and expiries, and forgetting peers long silent.
    pub(super) fn security_timers(&mut self) {
        let Some(sec) = self.security.as_mut() else { return };
        let now = self.now;
        let c = &self.cfg.security;
        let attempt = c.handshake_timeout * (u32::from(c.handshake_retries) + 1);
        let gc_after = self.cfg.hello_interval * NEIGHBOUR_GC_HELLOS;
        for slot in 0..sec.peers.len() {
            let Some(p) = sec.peers[slot].as_mut() else { continue };
            if now >= p.pending.deadline() {
                let (iface, addr) = (p.iface, p.addr);
                match &mut p.pending {
                    Pending::None => unreachable!("no deadline without a pending handshake"),
                    Pending::Init { state, sends, next_at } if *sends <= c.handshake_retries => {
                        *sends += 1;
                        *next_at = now + c.handshake_timeout;
                        send_message(&mut self.outbox, &mut sec.fragment, self.id, iface, addr, state.message());
                    }
                    Pending::Finish { message, sends, next_at } if *sends <= c.handshake_retries => {
                        *sends += 1;
                        *next_at = now + c.handshake_timeout;
                        send_message(&mut self.outbox, &mut sec.fragment, self.id, iface, addr, message);
                    }
                    abandoned => {
                        // The peer never answered, or never took our Finish: a session it
                        // does not hold is useless, so it goes too.
                        if matches!(abandoned, Pending::Finish { .. }) {
                            p.link = None;
                            p.retired = None;
                        }
                        p.pending = Pending::None;
                        p.inbox.clear();
                        p.retry_after = now + attempt;
                        self.stats.handshakes_failed += 1;
                    }
                }
            }
            let p = sec.peers[slot].as_ref().expect("slot in use");
            let silent_since = if p.link.is_some() { p.authentic_at } else { p.heard_at };
            if matches!(p.pending, Pending::None) && now.saturating_since(silent_since) >= gc_after {
                sec.peers[slot] = None;
            }
        }
    }

    /// The next frame to send on a mesh with link security: clear-text frames pass, every
    /// other one is sealed for its peer, multicast ones once per admitted peer.
    pub(super) fn poll_secure_transmit(&mut self, buf: &mut Vec<u8>) -> Option<Transmit> {
        let now = self.now;
        let sec = self.security.as_mut().expect("secure node");
        loop {
            if let Some(f) = sec.fanout {
                let next = sec.peers[f.next..].iter().position(|p| {
                    p.as_ref().is_some_and(|p| p.iface == f.iface && p.link.as_ref().is_some_and(|l| l.confirmed))
                });
                match next {
                    Some(i) => {
                        let slot = f.next + i;
                        sec.fanout = Some(FanOut { next: slot + 1, ..f });
                        let p = sec.peers[slot].as_mut().expect("found in use");
                        seal_into(p.link.as_mut().expect("found with link"), self.id, now, &sec.plain, buf);
                        return Some(Transmit { iface: f.iface, dest: Dest::Unicast(p.addr), class: f.class });
                    }
                    None => sec.fanout = None,
                }
            }
            let t = self.outbox.pop(&mut sec.plain)?;
            match (t.class, t.dest) {
                (TrafficClass::Handshake, _) => {
                    std::mem::swap(buf, &mut sec.plain);
                    return Some(t);
                }
                (_, Dest::Multicast) => sec.fanout = Some(FanOut { iface: t.iface, class: t.class, next: 0 }),
                (_, Dest::Unicast(addr)) => {
                    // Only an admitted record: an unadmitted one may claim the same address.
                    let peer = sec.peers.iter_mut().flatten().find(|p| p.iface == t.iface && p.addr == addr && p.link.is_some());
                    match peer.and_then(|p| p.link.as_mut()) {
                        Some(link) => {
                            seal_into(link, self.id, now, &sec.plain, buf);
                            return Some(t);
                        }
                        None => self.stats.unsealable_tx += 1,
                    }
                }
            }
        }
    }

    /// The admitted peers, for drivers and tests: (interface, id, key id).
    pub fn admitted(&self) -> impl Iterator<Item = (IfIndex, NodeId, KeyId)> + '_ {
        self.security.iter().flat_map(|s| s.peers.iter().flatten()).filter_map(|p| {
            p.link.as_ref().map(|l| (p.iface, p.id, l.key))
        })
    }
}
