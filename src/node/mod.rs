//! The protocol state machine of one mesh node, sans IO.
//!
//! # Contract
//!
//! Inputs go in through `handle_*(now, ...)`: a received datagram, a timer expiry, or a
//! command. Outputs come out of `poll_*`: frames to send ([`Node::poll_transmit`]), events
//! ([`Node::poll_event`]), application payloads ([`Node::poll_delivery`]) and the next
//! wake-up time ([`Node::poll_timeout`]). After every input the driver drains transmits,
//! events and deliveries, then sleeps until the timeout (or the next datagram) and calls
//! [`Node::handle_timeout`] when it passes. Nothing happens between inputs: the node has no
//! clock, no thread and no socket, so the simulator and the live daemon drive this same code.
//!
//! `now` must not go backwards; if a driver's clock does (a stepped clock in a skew
//! experiment), the node holds its own time still until the driver catches up.

mod admission;
mod bounce;
mod dataplane;
mod destmap;
mod detector;
mod guard;
mod kernel;
mod neighbour;
mod outbox;
mod routing;

pub use detector::{DETECTOR_WINDOW_MAX, phi_to_z_milli};
pub use guard::{AUDIT_PROBES_MAX, Behaviour, Misbehaviour};
pub use kernel::{KERNEL_GRACE_HELLOS, KernelCounts};
use detector::DetectorParams;
pub use neighbour::{LINK_COST_UNIT, NeighbourState};
pub use outbox::{TrafficClass, Transmit};

use crate::config::{ConfigError, ProtocolConfig};
use crate::ids::{Dest, IfIndex, NodeId, PeerAddr};
use crate::time::Instant;
use crate::secure::{Refusal, Trust};
use crate::wire::{self, DecodeError, FrameKind, Header, Tlv, TlvIter};
use admission::Security;
use guard::{Guard, Report};
use dataplane::PendingProbe;
use neighbour::{Confirm, Link, Neighbour};
use outbox::{ByteQueue, Outbox, OutboxBuffers};
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use routing::RouteTable;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// Something the node wants the driver (and the world) to know, stamped with the node's
/// own clock. Compact and `Copy`: drivers store millions of these.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A neighbour on `iface` changed state.
    Neighbour { at: Instant, iface: IfIndex, peer: NodeId, state: NeighbourState },
    /// The next hop toward `dest` changed (`None`: unreachable).
    Route { at: Instant, dest: NodeId, next_hop: Option<NodeId>, previous: Option<NodeId>, metric: u16 },
    /// A probe this node sent has an outcome.
    Probe { at: Instant, id: u64, dst: NodeId, outcome: ProbeOutcome },
    /// Something noteworthy that is not a state change: input for operators and healing.
    Incident { at: Instant, incident: Incident },
}

impl Event {
    pub fn at(&self) -> Instant {
        match *self {
            Event::Neighbour { at, .. }
            | Event::Route { at, .. }
            | Event::Probe { at, .. }
            | Event::Incident { at, .. } => at,
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ProbeOutcome {
    Delivered { rtt: Duration },
    /// No reply within `probe_timeout`.
    Lost,
    /// Not sent: no route to the destination at send time.
    NoRoute,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Incident {
    /// The last feasible route to `dest` is gone; a seqno request is out.
    Starved { dest: NodeId },
    /// A neighbour came back with a new incarnation: it lost its state.
    NeighbourRestarted { iface: IfIndex, peer: NodeId },
    /// A data packet ran out of TTL here: a forwarding loop or a path longer than the TTL.
    TtlExpired { src: NodeId, dst: NodeId },
    /// Whoever sends from `addr` on `iface` was caught misbehaving and is isolated for
    /// `security.isolation`: its frames dropped unread (an address), or its routes flushed
    /// and its updates ignored (an admitted neighbour that drops transit).
    Isolated { iface: IfIndex, addr: PeerAddr, misbehaviour: Misbehaviour },
    /// An attack seen on `iface` that cannot be pinned on a sender (a replay carries the
    /// address of the node it was captured from): reported, nobody isolated.
    Attack { iface: IfIndex, addr: PeerAddr, misbehaviour: Misbehaviour },
}

/// Commands from the application or the operator.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// Send an end-to-end reachability probe; its outcome comes back as [`Event::Probe`].
    Probe { dst: NodeId, id: u64 },
    /// Send application bytes to `dst`, forwarded hop by hop.
    Send { dst: NodeId, payload: &'a [u8] },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Error)]
pub enum CommandError {
    #[error("no route to {0}")]
    NoRoute(NodeId),
    #[error("payload of {len} bytes exceeds the {max} byte maximum")]
    PayloadTooLarge { len: usize, max: usize },
    #[error("{what} is full ({limit} entries); drain outputs or raise protocol.limits")]
    QueueFull { what: &'static str, limit: u32 },
}

/// Counters, for metrics export and for tests to assert on. Every drop has a counter.
///
/// In declaration order (`repr(C)`), the counters nearly every input bumps first: of this
/// struct, only they are in the part of a node that [`Node::input_memory`] reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct NodeStats {
    pub frames_rx: u64,
    pub bytes_rx: u64,
    pub updates_rx: u64,
    pub updates_unfeasible: u64,
    /// Updates for destinations outside this node's routing scope (another area's nodes,
    /// or our own area as a whole), dropped on arrival.
    pub updates_out_of_scope: u64,
    pub data_forwarded: u64,
    pub data_delivered: u64,
    pub decode_errors: u64,
    pub last_decode_error: Option<DecodeError>,
    /// Frames carrying our own id (a loop in the link layer, or a duplicate id).
    pub own_frames_rx: u64,
    pub unknown_iface_rx: u64,
    pub data_no_route: u64,
    pub ttl_expired: u64,
    pub probes_sent: u64,
    pub probes_delivered: u64,
    pub probes_lost: u64,
    pub seqno_requests_sent: u64,
    pub seqno_requests_forwarded: u64,
    pub neighbour_table_full: u64,
    pub destination_table_full: u64,
    pub route_slots_full: u64,
    pub events_dropped: u64,
    pub deliveries_dropped: u64,
    pub pending_probes_full: u64,
    // Link security; all zero on a node without an identity.
    pub handshakes_started: u64,
    pub handshakes_completed: u64,
    /// Attempts abandoned after every resend went unanswered.
    pub handshakes_failed: u64,
    /// Handshake messages that were malformed, for another pair, or badly signed.
    pub handshakes_rejected: u64,
    /// Inits not answered because `security.handshakes_per_s` was spent.
    pub handshakes_rate_limited: u64,
    /// Peers whose identity the trust policy refused (unknown key, bad or expired
    /// certificate, id not matching the key).
    pub identities_refused: u64,
    pub last_refusal: Option<Refusal>,
    /// Control or data frames in the clear, or sealed by a peer we hold no session with.
    pub unauthenticated_rx: u64,
    /// Sealed frames that failed authentication.
    pub forged_rx: u64,
    /// Sealed frames whose counter was already seen or is older than the replay window.
    pub replayed_rx: u64,
    /// Unicast frames for an address with no admitted peer behind it, dropped unsent.
    pub unsealable_tx: u64,
    /// Beacons, handshakes or sealed frames reaching a node without link security (or the
    /// other way round): a neighbour configured differently.
    pub security_mismatch_rx: u64,
    // Byzantine neighbours (see `guard`); all zero on a node without an identity.
    /// Frames dropped unread because their sender's address is isolated.
    pub blocked_rx: u64,
    /// Addresses and neighbours isolated.
    pub isolations: u64,
    /// Attacks reported that could not be pinned on a sender (replays).
    pub attacks_reported: u64,
    /// Audits of a next hop this node started, and audits of itself it answered.
    pub audits_started: u64,
    pub audits_answered: u64,
    /// Route updates from an isolated neighbour, ignored.
    pub updates_isolated: u64,
    // Port-unreachable reports (see `bounce`).
    /// Reports of a frame that found no process at a neighbour's address.
    pub unreachable_rx: u64,
    /// Reports ignored: for no neighbour, or quoting a frame this node cannot prove it sent.
    pub unreachable_ignored: u64,
    /// Neighbours suspected, and declared down, on a report rather than by silence.
    pub unreachable_suspicions: u64,
    pub unreachable_downs: u64,
    // Kernel receive counts (see `kernel`).
    /// Frames from neighbours that the kernel passed up and the node never received.
    pub kernel_unhandled: u64,
    /// Silences of an up neighbour whose suspicion was put off past the detector's deadline
    /// because the kernel was still receiving the neighbour's frames.
    pub kernel_deferrals: u64,
}

/// A read-only view of one neighbour, for drivers and checkers.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct NeighbourView {
    pub iface: IfIndex,
    pub id: NodeId,
    pub addr: PeerAddr,
    pub state: Option<NeighbourState>,
    pub cost: u16,
    pub rtt: Option<Duration>,
}

/// A read-only view of the selected route to a destination.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RouteView {
    pub dest: NodeId,
    pub next_hop: NodeId,
    pub iface: IfIndex,
    pub metric: u16,
    pub seqno: u16,
}

/// Fields in declaration order (`repr(C)`): first what every input reads (clock, timers,
/// neighbour and output tables), then the routing table, whose rarely read maps come last,
/// then the counters, of which inputs bump only the first few. [`Node::input_memory`]
/// reports the part up to those: at 10,000 nodes every input finds this record cold, and
/// fetching 16 of its 22 cache lines instead of all made scale-10k 1.02–1.06× faster.
#[repr(C, align(64))]
pub struct Node {
    id: NodeId,
    incarnation: u32,
    ifaces: u16,
    hello_seqno: u16,
    own_seqno: u16,
    area_seqno: u16,
    self_dirty: bool,
    behaviour: Behaviour,
    now: Instant,
    next_hello_at: Instant,
    next_update_at: Instant,
    holddown_until: Option<Instant>,
    /// Shared: every node of a simulation runs the same configuration, and one copy stays
    /// in cache while thousands of nodes read it. Per node it was 6 cache lines of every
    /// node's state, plus the area plan's table, which routing searches for every foreign
    /// destination.
    cfg: Arc<ProtocolConfig>,
    /// Boxed: 304 bytes, mostly an output buffer, drawn from a few times a second (hello and
    /// update jitter, ping nonces), while every input reads the rest of `Node`.
    rng: Box<ChaCha8Rng>,
    /// Our area, when routing by areas. Every member originates the area's route (with
    /// `area_seqno`); they converge on the newest seqno any of them has.
    area: Option<u32>,
    /// Link security: present when the node was given an identity.
    security: Option<Box<Security>>,
    /// Byzantine detection: present exactly when `security` is.
    guard: Option<Box<Guard>>,
    detector: DetectorParams,
    neighbours: Vec<Option<Neighbour>>,
    /// `neighbour_deadline` of each slot (`NEVER` for empty ones), kept beside the table so
    /// computing the next wake-up reads one cache line instead of every neighbour.
    deadlines: Vec<Instant>,
    /// (interface, id) of each slot's neighbour, kept beside the table for the same reason:
    /// every received frame finds its sender here, and every forwarded one its next hop, in
    /// one cache line rather than whole neighbour entries.
    keys: Vec<Option<(IfIndex, NodeId)>>,
    outbox: Outbox,
    scratch: Vec<u8>,
    events: VecDeque<Event>,
    probes: VecDeque<PendingProbe>,
    deliveries: ByteQueue<NodeId>,
    routes: RouteTable,
    stats: NodeStats,
}

/// Buffers a node writes its outputs into (frames, events), empty, as a driver lends them;
/// see [`Node::exchange_buffers`].
#[derive(Debug, Default)]
pub struct OutputBuffers {
    outbox: OutboxBuffers,
    scratch: Vec<u8>,
    events: VecDeque<Event>,
}

/// Which memory [`Node::datagram_memory`] reports: a driver asks for the tables first and,
/// once they have arrived, for the entries found through them.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Lookahead {
    /// Where the sender's key is looked up, and a data frame's next hop (the forwarding
    /// table) or a control frame's first updates' entries are indexed.
    Tables,
    /// The sender's neighbour entry, and the neighbour a data frame leaves through or the
    /// route entries of a control frame's first updates. Finding them reads what `Tables`
    /// reported.
    Entries,
}

/// A node's memory by part, in bytes; see [`Node::state_bytes`].
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct StateBytes {
    /// The `Node` struct itself and its random generator. The configuration is shared by
    /// the nodes of a simulation and not counted.
    pub fixed: usize,
    /// The routing table: one entry per destination in scope.
    pub routes: usize,
    /// Neighbour table: link state, hello history and failure detector per neighbour.
    pub neighbours: usize,
    /// Buffers for frames, events, probes and deliveries, at their high-water capacity.
    pub queues: usize,
}

impl StateBytes {
    pub fn total(&self) -> usize {
        self.fixed + self.routes + self.neighbours + self.queues
    }
}

impl std::ops::AddAssign for StateBytes {
    fn add_assign(&mut self, o: StateBytes) {
        self.fixed += o.fixed;
        self.routes += o.routes;
        self.neighbours += o.neighbours;
        self.queues += o.queues;
    }
}

/// Most confirmation pings ever sent for one suspicion.
const CONFIRM_PINGS_MAX: u8 = 16;

/// How many pings confirm a suspicion: enough that, on a link whose measured round-trip
/// delivery is `256 / etx`, all of them failing while the neighbour is alive is less likely
/// than `miss`. A clean link needs the configured minimum; a lossy one more, so that loss
/// alone does not make a false positive. Integer arithmetic in parts per million.
fn confirm_pings(etx: u16, min: u8, miss: crate::units::Percent) -> u8 {
    const PPM: u64 = 1_000_000;
    let delivery_ppm = (u64::from(LINK_COST_UNIT) * PPM / u64::from(etx.max(1))).min(PPM);
    let fail_ppm = PPM - delivery_ppm;
    let target = u64::from(miss.ppm()).max(1);
    let mut all_fail = PPM;
    let mut n = 0u8;
    while n < CONFIRM_PINGS_MAX && (n < min || all_fail > target) {
        all_fail = all_fail * fail_ppm / PPM;
        n += 1;
    }
    n
}

impl std::fmt::Debug for Node {
    /// A summary: the full tables are thousands of entries.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .field("incarnation", &self.incarnation)
            .field("now", &self.now)
            .field("interfaces", &self.ifaces)
            .field("neighbours", &self.neighbours.iter().flatten().count())
            .field("destinations", &self.routes.len())
            .field("own_seqno", &self.own_seqno)
            .finish_non_exhaustive()
    }
}

/// How long a neighbour that is down and silent is remembered before its slot is reused.
const NEIGHBOUR_GC_HELLOS: u32 = 100;
/// A neighbour heard but never bidirectional is forgotten after this many silent hellos.
const HEARD_EXPIRY_HELLOS: u32 = 4;

impl Node {
    /// Creates a node with no interfaces. `seed` feeds every random choice the node makes
    /// (incarnation, initial sequence number, timer phases, nonces): the same seed gives the
    /// same behaviour.
    ///
    /// Pass an `Arc` to share one configuration among many nodes (see the `cfg` field).
    pub fn new(id: NodeId, cfg: impl Into<Arc<ProtocolConfig>>, seed: [u8; 32], now: Instant) -> Result<Self, ConfigError> {
        Self::build(id, cfg.into(), seed, now, None)
    }

    /// Creates a node with link security: it goes by the id its identity names, admits only
    /// neighbours `trust` accepts after a handshake, and seals every frame to them. The
    /// seed also feeds the handshake's randomness, so a seeded run stays reproducible.
    pub fn new_secure(cfg: impl Into<Arc<ProtocolConfig>>, trust: Trust, seed: [u8; 32], now: Instant) -> Result<Self, ConfigError> {
        Self::build(trust.node_id(), cfg.into(), seed, now, Some(trust))
    }

    fn build(id: NodeId, cfg: Arc<ProtocolConfig>, seed: [u8; 32], now: Instant, trust: Option<Trust>) -> Result<Self, ConfigError> {
        cfg.validate()?;
        if cfg.area_starts.is_some() && crate::area::is_area(id) {
            return Err(ConfigError {
                field: "area_starts",
                problem: format!("node id {} is not below 2^31; with areas, ids with the top bit name areas", id.0),
            });
        }
        let area = cfg.area_starts.as_ref().map(|plan| plan.area_of(id));
        let mut rng = ChaCha8Rng::from_seed(seed);
        let incarnation = rng.next_u32();
        let own_seqno = rng.next_u32() as u16;
        let max_outbox = cfg.limits.max_outbox_frames as usize;
        let max_deliveries = cfg.limits.max_deliveries as usize;
        let first_update = now + cfg.update_interval.mul_f64(rng.random_range(0.5..1.0));
        // Interfaces greet at once when added; the periodic cadence starts at a random phase.
        let first_hello = now + cfg.hello_interval.mul_f64(rng.random_range(0.0..1.0));
        let holddown = now + cfg.boot_holddown();
        // Drawn last, and only with an identity, so a node without one sees the same stream
        // as before link security existed.
        let security = trust.map(|t| Box::new(Security::new(t, rng.random(), &cfg.security, now)));
        let guard = security.is_some().then(Box::<Guard>::default);
        let frame_len_max = if security.is_some() { wire::MAX_SEALABLE_FRAME_LEN } else { wire::MAX_FRAME_LEN };
        Ok(Node {
            id,
            detector: DetectorParams {
                window: cfg.detector.window,
                min_std_us: u64::try_from(cfg.detector.min_std_dev.as_micros()).unwrap_or(u64::MAX),
                z_milli: phi_to_z_milli(cfg.detector.phi_suspect),
            },
            rng: Box::new(rng),
            incarnation,
            now,
            ifaces: 0,
            hello_seqno: 0,
            next_hello_at: first_hello,
            neighbours: Vec::new(),
            deadlines: Vec::new(),
            keys: Vec::new(),
            routes: RouteTable::new(cfg.area_starts.as_ref().zip(area)),
            own_seqno,
            area,
            // Not random, unlike `own_seqno`: members must agree on which seqno is newest,
            // and seqnos scattered over the whole circle have no newest.
            area_seqno: 0,
            self_dirty: false,
            next_update_at: first_update,
            holddown_until: Some(holddown),
            outbox: Outbox::new(id, max_outbox, frame_len_max),
            scratch: Vec::new(),
            events: VecDeque::new(),
            probes: VecDeque::new(),
            deliveries: ByteQueue::new(max_deliveries),
            stats: NodeStats::default(),
            security,
            guard,
            behaviour: Behaviour::Honest,
            cfg,
        })
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn incarnation(&self) -> u32 {
        self.incarnation
    }

    pub fn config(&self) -> &ProtocolConfig {
        &self.cfg
    }

    pub fn stats(&self) -> &NodeStats {
        &self.stats
    }

    /// Bytes of memory this node holds, by part: what "state per node" means in reports.
    pub fn state_bytes(&self) -> StateBytes {
        StateBytes {
            fixed: size_of::<Node>() + size_of::<ChaCha8Rng>(),
            routes: self.routes.heap_bytes(),
            neighbours: self.neighbours.capacity() * size_of::<Option<Neighbour>>()
                + self.deadlines.capacity() * size_of::<Instant>()
                + self.keys.capacity() * size_of::<Option<(IfIndex, NodeId)>>(),
            queues: self.outbox.heap_bytes()
                + self.scratch.capacity()
                + self.events.capacity() * size_of::<Event>()
                + self.probes.capacity() * size_of::<PendingProbe>()
                + self.deliveries.heap_bytes()
                + self.security.as_ref().map_or(0, |s| size_of::<Security>() + s.heap_bytes())
                + self.guard.as_ref().map_or(0, |g| size_of::<Guard>() + g.heap_bytes()),
        }
    }

    /// Bytes of control and data frames this node has queued for sending.
    pub fn bytes_sent(&self) -> (u64, u64) {
        (self.outbox.control_bytes, self.outbox.data_bytes)
    }

    /// Adds an interface and greets it at once. Routes follow as soon as a neighbour there
    /// proves it hears us (each side dumps its table to a new neighbour).
    pub fn add_interface(&mut self, now: Instant) -> IfIndex {
        self.advance(now);
        assert!(self.ifaces < u16::MAX - 1, "interface count overflow");
        let iface = IfIndex(self.ifaces);
        self.ifaces += 1;
        self.send_beacon(iface);
        self.send_hello(iface);
        self.finish_input();
        iface
    }

    /// What the driver knows of this node's previous process, told before any input:
    /// `None` when there was none (a first boot), or how long ago it stopped. The boot
    /// hold-down protects neighbours that may still route through the previous incarnation
    /// (ARCHITECTURE.md, loop freedom). When none can, because there was none or its
    /// routes have expired everywhere since (`route_expiry` and one periodic sweep), the
    /// hold-down is lifted and the node routes as soon as it hears a route: a mesh that
    /// powers up together converges without waiting it out. Without this call the
    /// hold-down stands.
    pub fn set_previous_run(&mut self, gone_for: Option<Duration>) {
        let announced = self.cfg.update_interval;
        let forgotten = self.cfg.route_expiry().max(announced * 7 / 2) + announced;
        if gone_for.is_none_or(|d| d >= forgotten) {
            self.holddown_until = None;
        }
    }

    /// Resumes after a restart that kept state (or a long stall): every neighbour gets a
    /// fresh grace period instead of being suspected for the time we were away, and hellos
    /// and routes go out now.
    pub fn resume(&mut self, now: Instant) {
        self.advance(now);
        for nb in self.neighbours.iter_mut().flatten() {
            nb.detector.touch(self.now, &self.detector, nb.announced_interval);
        }
        self.refresh_deadlines();
        self.next_hello_at = self.now;
        self.next_update_at = self.now;
        self.handle_timeout(self.now);
    }

    fn ifaces(&self) -> usize {
        usize::from(self.ifaces)
    }

    /// Moves the node's clock forward; never back.
    fn advance(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    fn emit(&mut self, event: Event) {
        if self.events.len() >= self.cfg.limits.max_events as usize {
            self.stats.events_dropped += 1;
            return;
        }
        self.events.push_back(event);
    }

    /// Ends every input: triggered updates go out, staged TLVs become frames.
    fn finish_input(&mut self) {
        self.flush_triggered();
        self.outbox.seal(self.ifaces());
    }

    // ----- inputs ---------------------------------------------------------------------------

    /// A datagram arrived on `iface` from `src`.
    pub fn handle_datagram(&mut self, now: Instant, iface: IfIndex, src: PeerAddr, bytes: &[u8]) {
        self.advance(now);
        self.stats.frames_rx += 1;
        self.stats.bytes_rx += bytes.len() as u64;
        if self.blocked(iface, src) {
            return self.finish_input();
        }
        match wire::decode_frame(bytes) {
            Err(e) => self.malformed(iface, src, e),
            Ok((hdr, _)) if hdr.sender == self.id => self.stats.own_frames_rx += 1,
            Ok(_) if iface.index() >= self.ifaces() => self.stats.unknown_iface_rx += 1,
            Ok((hdr, body)) if self.security.is_some() => self.secure_frame(iface, src, hdr, bytes, body),
            Ok((hdr, body)) => self.plain_frame(iface, src, hdr, body),
        }
        self.finish_input();
    }

    /// A control or data frame this node may act on: received in the clear on a mesh without
    /// link security, or opened from a sealed frame.
    fn plain_frame(&mut self, iface: IfIndex, src: PeerAddr, hdr: Header, body: &[u8]) {
        match hdr.kind {
            FrameKind::Control => match wire::validate_control(body) {
                Ok(_) => self.handle_control(iface, src, hdr.sender, body),
                Err(e) => self.decode_error(e),
            },
            FrameKind::Data => match wire::decode_data(body) {
                Ok(d) => self.handle_data(iface, hdr.sender, d),
                Err(e) => self.decode_error(e),
            },
            FrameKind::Beacon | FrameKind::Handshake | FrameKind::Sealed => self.stats.security_mismatch_rx += 1,
        }
    }

    /// Reports to `fetch`, as (address, bytes), memory that handling `datagram` from
    /// `iface` will read, for a driver that knows its next inputs and fetches their memory
    /// ahead: with thousands of nodes in one process every table is cold, and misses one input
    /// at a time form a chain. Only a hint: it changes nothing, and a wrong guess (a corrupt
    /// frame) costs only the fetch.
    pub fn datagram_memory(&self, stage: Lookahead, iface: IfIndex, datagram: &[u8], mut fetch: impl FnMut(*const u8, usize)) {
        let Some((sender, dst)) = wire::peek_frame(datagram) else { return };
        match stage {
            Lookahead::Tables => {
                fetch(self.keys.as_ptr().cast(), size_of_val(self.keys.as_slice()));
                fetch(self.deadlines.as_ptr().cast(), size_of_val(self.deadlines.as_slice()));
            }
            Lookahead::Entries => {
                // The slot itself, not what is in it: looking would wait for the very line
                // this asks for.
                if let Some(slot) = self.find_neighbour(iface, sender) {
                    fetch(std::ptr::from_ref(&self.neighbours[slot]).cast(), Neighbour::bytes_used(&self.detector));
                }
            }
        }
        match dst {
            Some(dst) => self.route_memory(stage, dst, &mut fetch),
            None => self.update_memory(stage, datagram, &mut fetch),
        }
    }

    /// Reports to `fetch`, as (address, bytes), the part of this node's record that nearly
    /// every input reads: all of it but the counters no common input bumps (see the
    /// layout note on [`Node`]). For a driver that fetches its next inputs' memory ahead,
    /// as with [`Node::datagram_memory`].
    pub fn input_memory(&self, mut fetch: impl FnMut(*const u8, usize)) {
        const HOT_BYTES: usize = std::mem::offset_of!(Node, stats) + std::mem::offset_of!(NodeStats, decode_errors);
        fetch(std::ptr::from_ref(self).cast(), HOT_BYTES);
    }

    /// The time from [`Node::poll_timeout`] has come (calling early is harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        if self.now >= self.next_hello_at {
            // One sequence number per round: every interface's neighbours see consecutive
            // numbers, so a gap means a lost hello and nothing else.
            self.hello_seqno = self.hello_seqno.wrapping_add(1);
            for i in 0..self.ifaces {
                self.send_beacon(IfIndex(i));
                self.send_hello(IfIndex(i));
            }
            // A few percent of jitter keeps nodes that booted together from sending in
            // lock step, as real timers do; it is far below what the detector tolerates.
            let interval = self.cfg.hello_interval.mul_f64(self.rng.random_range(0.95..1.05));
            self.next_hello_at += interval;
            if self.next_hello_at <= self.now {
                // We were stalled for more than an interval: restart the cadence from now.
                self.next_hello_at = self.now + interval;
            }
        }
        // Only neighbours whose deadline has come are read: at 10,000 nodes each one read is
        // a cache miss, and a timer fires about twenty times a second per node.
        for slot in 0..self.deadlines.len() {
            if self.now >= self.deadlines[slot] {
                self.neighbour_timers(slot);
            }
        }
        if let Some(until) = self.holddown_until
            && self.now >= until
        {
            self.holddown_until = None;
            self.reselect_all();
        }
        if self.now >= self.next_update_at {
            self.periodic_update();
            let jitter = self.rng.random_range(0.75..1.0);
            self.next_update_at = self.now + self.cfg.update_interval.mul_f64(jitter);
        }
        self.request_timers();
        self.probe_timers();
        self.security_timers();
        self.guard_timers();
        self.finish_input();
    }

    /// Applies a command from the application or operator.
    pub fn handle_command(&mut self, now: Instant, cmd: Command<'_>) -> Result<(), CommandError> {
        self.advance(now);
        let result = match cmd {
            Command::Probe { dst, id } => self.send_probe(dst, id),
            Command::Send { dst, payload } => self.send_app(dst, payload),
        };
        self.finish_input();
        result
    }

    // ----- outputs --------------------------------------------------------------------------

    /// The next frame to send, written into `buf`.
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> Option<Transmit> {
        if self.security.is_some() {
            return self.poll_secure_transmit(buf);
        }
        self.outbox.pop(buf)
    }

    /// Swaps the buffers this node writes its outputs into for `buffers`, if it has no
    /// output waiting, and says whether it did. A driver running thousands of nodes in one
    /// thread lends one set to each node it hands an input, and takes it back once it has
    /// drained the node: outputs are then written into memory already in cache, not into
    /// buffers of the node's own that went cold while other nodes ran (a miss or more per
    /// frame at 10,000 nodes). A node with output waiting keeps its buffers, so nothing is
    /// lost; and what it hands over is empty, so lent buffers always are.
    pub fn exchange_buffers(&mut self, buffers: &mut OutputBuffers) -> bool {
        if !self.outbox.is_idle() || !self.events.is_empty() {
            return false;
        }
        debug_assert!(buffers.events.is_empty());
        self.outbox.exchange_buffers(&mut buffers.outbox);
        std::mem::swap(&mut self.scratch, &mut buffers.scratch);
        std::mem::swap(&mut self.events, &mut buffers.events);
        true
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next application payload addressed to this node, written into `buf`; returns
    /// its source.
    pub fn poll_delivery(&mut self, buf: &mut Vec<u8>) -> Option<NodeId> {
        self.deliveries.pop(buf)
    }

    /// When the node next needs [`Node::handle_timeout`].
    pub fn poll_timeout(&self) -> Instant {
        debug_assert!(
            self.neighbours.iter().zip(&self.deadlines).all(|(nb, &d)| d == nb.as_ref().map_or(Instant::NEVER, |nb| self.neighbour_deadline(nb))),
            "a neighbour's cached deadline is stale"
        );
        let mut t = self.next_update_at.min(self.next_hello_at);
        if let Some(h) = self.holddown_until {
            t = t.min(h);
        }
        for &d in &self.deadlines {
            t = t.min(d);
        }
        if let Some(r) = self.routes.next_deadline() {
            t = t.min(r);
        }
        if let Some(p) = self.probes.front() {
            t = t.min(p.deadline);
        }
        if let Some(s) = &self.security {
            t = t.min(s.next_deadline());
        }
        if let Some(g) = &self.guard {
            t = t.min(g.next_deadline());
        }
        t
    }

    // ----- inspection -----------------------------------------------------------------------

    pub fn neighbours(&self) -> impl Iterator<Item = NeighbourView> + '_ {
        self.neighbours.iter().flatten().map(|nb| NeighbourView {
            iface: nb.iface,
            id: nb.id,
            addr: nb.addr,
            state: nb.public_state(),
            cost: nb.cost,
            rtt: nb.srtt(),
        })
    }

    /// The route that traffic for `dest` takes from here, if any: the route to `dest`
    /// itself, or with areas, possibly the route to `dest`'s area.
    pub fn route(&self, dest: NodeId) -> Option<RouteView> {
        let (via, metric, seqno) = self.forwarding_route(dest)?;
        let (iface, next_hop) = self.keys[usize::from(via)]?;
        Some(RouteView { dest, next_hop, iface, metric, seqno })
    }

    pub fn next_hop(&self, dest: NodeId) -> Option<NodeId> {
        self.keys[usize::from(self.forwarding_via(dest)?)].map(|(_, id)| id)
    }

    /// Destinations this node holds state for (reachable or remembered).
    pub fn destinations(&self) -> usize {
        self.routes.len()
    }

    // ----- link sensing and failure detection -------------------------------------------------

    /// Sends the current round's hello (and IHUs) on one interface. Extra hellos between
    /// rounds repeat the round's number, which receivers treat as a duplicate.
    fn send_hello(&mut self, iface: IfIndex) {
        let hello = Tlv::Hello {
            seqno: self.hello_seqno,
            interval_ms: self.cfg.hello_interval.as_millis() as u16,
            incarnation: self.incarnation,
            timestamp_us: self.now.as_micros() as u32,
        };
        let ifaces = self.ifaces();
        self.outbox.push(iface, Dest::Multicast, hello, ifaces);
        for nb in self.neighbours.iter().flatten() {
            if nb.iface == iface && nb.wants_ihu() {
                let hold_us = self.now.saturating_since(nb.last_hello_rx).as_micros().min(u128::from(u32::MAX));
                let ihu = Tlv::Ihu {
                    addressee: nb.id,
                    addressee_incarnation: nb.incarnation,
                    rxcost: nb.rxcost(),
                    echo_timestamp_us: nb.last_hello_ts_us,
                    hold_us: hold_us as u32,
                };
                self.outbox.push(iface, Dest::Multicast, ihu, ifaces);
            }
        }
    }

    fn decode_error(&mut self, e: DecodeError) {
        self.stats.decode_errors += 1;
        self.stats.last_decode_error = Some(e);
    }

    /// A frame from `src` that does not decode: counted, and evidence against the sender.
    fn malformed(&mut self, iface: IfIndex, src: PeerAddr, e: DecodeError) {
        self.decode_error(e);
        self.evidence(iface, src, Misbehaviour::MalformedFlood);
    }

    fn find_neighbour(&self, iface: IfIndex, id: NodeId) -> Option<usize> {
        self.keys.iter().position(|&k| k == Some((iface, id)))
    }

    fn nb(&self, slot: usize) -> &Neighbour {
        self.neighbours[slot].as_ref().expect("neighbour slot in use")
    }

    fn nb_mut(&mut self, slot: usize) -> &mut Neighbour {
        self.neighbours[slot].as_mut().expect("neighbour slot in use")
    }

    fn handle_control(&mut self, iface: IfIndex, src: PeerAddr, sender: NodeId, body: &[u8]) {
        let mut slot = self.find_neighbour(iface, sender);
        for tlv in TlvIter::new(body) {
            // `validate_control` accepted every TLV of this body already.
            let Ok(tlv) = tlv else { return };
            match tlv {
                Tlv::Hello { seqno, interval_ms, incarnation, timestamp_us } => {
                    let interval = Duration::from_millis(u64::from(interval_ms.max(1)));
                    slot = self.on_hello(iface, src, sender, slot, seqno, interval, incarnation, timestamp_us);
                }
                Tlv::Ihu { addressee, addressee_incarnation, rxcost, echo_timestamp_us, hold_us } => {
                    if addressee == self.id
                        && let Some(s) = slot
                    {
                        self.on_ihu(s, addressee_incarnation, rxcost, echo_timestamp_us, hold_us);
                    }
                }
                Tlv::Update { dest, seqno, metric, interval_ms } => match slot {
                    // An isolated neighbour is still a destination: only routes through it go.
                    Some(s) if dest != sender && self.isolated(s) => self.stats.updates_isolated += 1,
                    Some(s) => self.on_update(s, dest, seqno, metric, interval_ms),
                    None => {}
                },
                Tlv::RouteRequest { dest } => self.on_route_request(dest),
                Tlv::WildcardRequest => self.dump_routes(Some(iface)),
                Tlv::SeqnoRequest { dest, seqno, hop_count, origin } => {
                    self.on_seqno_request(slot, dest, seqno, hop_count, origin);
                }
                Tlv::Ping { nonce } => {
                    self.outbox.push(iface, Dest::Unicast(src), Tlv::Pong { nonce }, self.ifaces());
                }
                Tlv::Pong { nonce } => {
                    if let Some(s) = slot {
                        self.on_pong(s, nonce);
                    }
                }
                Tlv::Audit { dest, nonce } => {
                    if let Some(s) = slot {
                        self.on_audit(s, dest, nonce);
                    }
                }
                Tlv::AuditReport { nonce, delivered, sent, next_hop, metric } => {
                    if let Some(s) = slot {
                        self.on_audit_report(s, nonce, Report { delivered: delivered.min(sent), sent, next_hop, metric });
                    }
                }
            }
        }
        if let Some(s) = slot {
            self.refresh_cost(s);
            self.refresh_deadline(s);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_hello(
        &mut self,
        iface: IfIndex,
        src: PeerAddr,
        sender: NodeId,
        slot: Option<usize>,
        seqno: u16,
        interval: Duration,
        incarnation: u32,
        timestamp_us: u32,
    ) -> Option<usize> {
        let now = self.now;
        let (slot, first_contact) = match slot {
            Some(s) => (s, false),
            None => {
                let free = self.keys.iter().position(Option::is_none);
                let s = match free {
                    Some(s) => s,
                    None if self.neighbours.len() < usize::from(self.cfg.limits.max_neighbours) => {
                        self.neighbours.push(None);
                        self.deadlines.push(Instant::NEVER);
                        self.keys.push(None);
                        self.neighbours.len() - 1
                    }
                    None => {
                        self.stats.neighbour_table_full += 1;
                        return None;
                    }
                };
                self.neighbours[s] = Some(Neighbour::new(iface, sender, src, incarnation, now, &self.detector));
                self.keys[s] = Some((iface, sender));
                (s, true)
            }
        };
        let mut restarted = false;
        let (link, known_incarnation) = (self.nb(slot).link, self.nb(slot).incarnation);
        if known_incarnation != incarnation {
            if matches!(link, Link::Up | Link::Suspected) {
                self.emit(Event::Incident { at: now, incident: Incident::NeighbourRestarted { iface, peer: sender } });
                self.neighbour_lost(slot);
            }
            restarted = true;
        }
        let params = self.detector;
        let nb = self.nb_mut(slot);
        if restarted || nb.link == Link::Down {
            nb.reset_link(incarnation, now, &params);
            nb.link = Link::Heard;
            nb.since = now;
        }
        nb.addr = src;
        nb.record_hello(seqno, interval, timestamp_us, now);
        if first_contact || restarted || link == Link::Down {
            // Answer at once so the neighbour sees us hear it without waiting a hello interval.
            self.send_hello(iface);
        }
        Some(slot)
    }

    fn on_ihu(&mut self, slot: usize, our_incarnation: u32, rxcost: u16, echo_us: u32, hold_us: u32) {
        if our_incarnation != self.incarnation {
            // The neighbour has not yet seen our current incarnation: it may still route
            // through our previous life. Not bidirectional until it has.
            return;
        }
        let (now, params) = (self.now, self.detector);
        let nb = self.nb_mut(slot);
        nb.txcost = rxcost;
        let rtt_us = (now.as_micros() as u32).wrapping_sub(echo_us).wrapping_sub(hold_us);
        if rtt_us < 10_000_000 {
            nb.record_rtt(rtt_us);
        }
        let announced = nb.announced_interval;
        match nb.link {
            Link::Up => nb.detector.heartbeat(now, &params, announced),
            Link::Heard | Link::Down | Link::Suspected => {
                if nb.link == Link::Suspected {
                    nb.detector.heartbeat(now, &params, announced);
                } else {
                    nb.detector.reset(now, &params, announced);
                }
                let was_suspected = nb.link == Link::Suspected;
                nb.link = Link::Up;
                nb.since = now;
                nb.confirm = None;
                let (iface, peer) = (nb.iface, nb.id);
                self.emit(Event::Neighbour { at: now, iface, peer, state: NeighbourState::Up });
                if was_suspected {
                    self.reselect_via(slot as u16);
                } else {
                    self.refresh_cost(slot);
                    self.dump_routes(Some(iface));
                }
            }
        }
    }

    fn on_pong(&mut self, slot: usize, nonce: u32) {
        let (now, params) = (self.now, self.detector);
        let nb = self.nb_mut(slot);
        if nb.link != Link::Suspected || nb.confirm.map(|c| c.nonce) != Some(nonce) {
            return;
        }
        nb.link = Link::Up;
        nb.since = now;
        nb.confirm = None;
        nb.detector.touch(now, &params, nb.announced_interval);
        let (iface, peer) = (nb.iface, nb.id);
        self.emit(Event::Neighbour { at: now, iface, peer, state: NeighbourState::Up });
        self.reselect_via(slot as u16);
    }

    /// Keeps `deadlines[slot]` equal to [`Node::neighbour_deadline`]. Every change to a
    /// neighbour's link state, detector or confirmation calls this (the end of every input
    /// from it does too), since timers read only neighbours whose cached deadline is due.
    fn refresh_deadline(&mut self, slot: usize) {
        self.deadlines[slot] = self.neighbours[slot].as_ref().map_or(Instant::NEVER, |nb| self.neighbour_deadline(nb));
    }

    fn refresh_deadlines(&mut self) {
        for slot in 0..self.neighbours.len() {
            self.refresh_deadline(slot);
        }
    }

    /// When something next happens to this neighbour without input.
    fn neighbour_deadline(&self, nb: &Neighbour) -> Instant {
        match nb.link {
            Link::Up => nb.suspect_at(),
            Link::Suspected => nb.confirm.map_or(Instant::NEVER, |c| c.next_at),
            Link::Heard => nb.last_hello_rx + nb.announced_interval * HEARD_EXPIRY_HELLOS,
            Link::Down => nb.since + self.cfg.hello_interval * NEIGHBOUR_GC_HELLOS,
        }
    }

    fn neighbour_timers(&mut self, slot: usize) {
        let Some(nb) = self.neighbours[slot].as_ref() else { return };
        let deadline = self.neighbour_deadline(nb);
        if self.now < deadline {
            return;
        }
        match nb.link {
            Link::Up => self.suspect(slot),
            Link::Suspected => self.confirm_step(slot),
            // Heard but never bidirectional, or down and silent for long: forget it.
            Link::Heard | Link::Down => {
                self.neighbours[slot] = None;
                self.keys[slot] = None;
                self.deadlines[slot] = Instant::NEVER;
            }
        }
    }

    /// Suspects an up neighbour: routes through it are re-evaluated, and the first
    /// confirmation ping goes out now.
    fn suspect(&mut self, slot: usize) {
        let now = self.now;
        let nonce = self.rng.next_u32();
        let nb = self.nb_mut(slot);
        debug_assert_eq!(nb.link, Link::Up, "only an up neighbour becomes suspected");
        nb.link = Link::Suspected;
        nb.since = now;
        nb.confirm = Some(Confirm { nonce, pings_sent: 0, next_at: now });
        let (iface, peer) = (nb.iface, nb.id);
        self.emit(Event::Neighbour { at: now, iface, peer, state: NeighbourState::Suspected });
        self.reselect_via(slot as u16);
        // `confirm_step` refreshes this neighbour's deadline.
        self.confirm_step(slot);
    }

    /// Sends the next confirmation ping, or declares the neighbour down when the last one
    /// went unanswered.
    fn confirm_step(&mut self, slot: usize) {
        let det = &self.cfg.detector;
        let (interval, timeout) = (det.confirm_interval, det.confirm_timeout);
        let probes = confirm_pings(self.nb(slot).cost_etx(), det.confirm_probes, det.confirm_miss);
        let now = self.now;
        let nb = self.nb_mut(slot);
        let Some(mut c) = nb.confirm else { return };
        if now < c.next_at {
            return;
        }
        if c.pings_sent >= probes {
            self.neighbour_lost(slot);
            return;
        }
        c.pings_sent += 1;
        c.next_at = if c.pings_sent < probes {
            now + interval
        } else {
            now + timeout.max(nb.srtt().unwrap_or(Duration::ZERO) * 4)
        };
        nb.confirm = Some(c);
        let (iface, addr, nonce) = (nb.iface, nb.addr, c.nonce);
        self.outbox.push(iface, Dest::Unicast(addr), Tlv::Ping { nonce }, self.ifaces());
        self.refresh_deadline(slot);
    }

    /// Declares a neighbour down: event, and every route through it withdrawn.
    fn neighbour_lost(&mut self, slot: usize) {
        let now = self.now;
        let nb = self.nb_mut(slot);
        let was_public = matches!(nb.link, Link::Up | Link::Suspected);
        nb.link = Link::Down;
        nb.since = now;
        nb.confirm = None;
        nb.cost = wire::METRIC_INFINITY;
        let (iface, peer) = (nb.iface, nb.id);
        if was_public {
            self.emit(Event::Neighbour { at: now, iface, peer, state: NeighbourState::Down });
        }
        self.refresh_deadline(slot);
        self.flush_routes_via(slot as u16);
    }

    /// Recomputes a link's cost; routes through it are re-evaluated if it changed.
    fn refresh_cost(&mut self, slot: usize) {
        let (min, max, pen) = (self.cfg.rtt_min, self.cfg.rtt_max, self.cfg.rtt_max_penalty);
        let nb = self.nb_mut(slot);
        let cost = nb.compute_cost(min, max, pen);
        if cost != nb.cost {
            nb.cost = cost;
            self.reselect_via(slot as u16);
        }
    }
}
