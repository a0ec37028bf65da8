//! The link handshake: three messages that admit a neighbour and key its session.
//!
//! ```text
//! Init   I → R   initiator | responder | incarnation | nonce[16] | pk_I | ek | cert?
//! Reply  R → I   initiator | responder | incarnation | nonce[16] | pk_R | ct | cert? | sig_R
//! Finish I → R   initiator | responder | sig_I
//!
//! th     = SHA-256("x0tta6bl4 handshake v1" | Init | Reply without sig_R)
//! sig_R  = ML-DSA-65(sk_R, "reply" | th)
//! th'    = SHA-256(th | sig_R)
//! sig_I  = ML-DSA-65(sk_I, "finish" | th')
//! keys   = HKDF-SHA-256(salt = th', ikm = ML-KEM-768 shared secret): "x0 i->r", "x0 r->i"
//! ```
//!
//! `ek` is an ephemeral ML-KEM-768 key of the initiator's; the responder encapsulates to it
//! (`ct`). Each side signs a transcript holding the other's fresh nonce, so each proves it
//! holds its ML-DSA key now, not in a recorded past: a replayed Init costs the responder a
//! Reply but admits nobody, because only the initiator can decapsulate `ct` and only it can
//! sign `th'`. Both signatures cover `ek` and `ct`, so nobody in between can substitute
//! them. The ephemeral key is dropped after the handshake: recorded traffic stays sealed
//! even if a long-term key leaks later.
//!
//! The node with the lower id initiates; see the node's neighbour handling.

use super::session::{RekeyPolicy, Session};
use super::{Certificate, Refusal, Trust};
use crate::ids::NodeId;
use crate::pq::{
    self, CryptoRng, KEM_CIPHERTEXT_LEN, KEM_PUBLIC_KEY_LEN, KemKeyPair, KeyError, KeyId, PublicKey, SIG_PUBLIC_KEY_LEN,
    SIGNATURE_LEN, SharedSecret,
};
use crate::time::Instant;
use crate::wire::{DecodeError, Reader};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use thiserror::Error;

pub const NONCE_LEN: usize = 16;
const IDS_LEN: usize = 1 + 4 + 4;
const DOMAIN: &[u8] = b"x0tta6bl4 handshake v1";

/// The longest handshake message: a Reply carrying a certificate.
pub const MAX_MESSAGE_LEN: usize =
    IDS_LEN + 4 + NONCE_LEN + SIG_PUBLIC_KEY_LEN + KEM_CIPHERTEXT_LEN + 1 + Certificate::ENCODED_LEN + SIGNATURE_LEN;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum MessageKind {
    Init = 1,
    Reply = 2,
    Finish = 3,
}

/// Who a handshake message is between, read before any expensive work.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub kind: MessageKind,
    pub initiator: NodeId,
    pub responder: NodeId,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Error)]
pub enum HandshakeError {
    #[error("malformed handshake message: {0}")]
    Malformed(&'static str),
    #[error("identity refused: {0}")]
    Refused(#[from] Refusal),
    #[error("the {0} signature does not verify")]
    BadSignature(&'static str),
    #[error("the peer's ML-KEM key is invalid: {0}")]
    BadKemKey(KeyError),
}

/// Reads a message's kind and parties.
pub fn route(msg: &[u8]) -> Result<Route, HandshakeError> {
    let mut r = Reader::new(msg);
    let kind = match r.u8()? {
        1 => MessageKind::Init,
        2 => MessageKind::Reply,
        3 => MessageKind::Finish,
        _ => return Err(HandshakeError::Malformed("unknown message kind")),
    };
    Ok(Route { kind, initiator: NodeId(r.u32()?), responder: NodeId(r.u32()?) })
}

impl From<DecodeError> for HandshakeError {
    fn from(_: DecodeError) -> Self {
        HandshakeError::Malformed("truncated")
    }
}

/// The fields Init and Reply both start with: the sender's incarnation, a fresh nonce and
/// its public key.
fn push_party(m: &mut Vec<u8>, trust: &Trust, rng: &mut CryptoRng, incarnation: u32) {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce);
    m.extend_from_slice(&incarnation.to_be_bytes());
    m.extend_from_slice(&nonce);
    m.extend_from_slice(&trust.key.public().as_bytes()[..]);
}

/// Reads what [`push_party`] wrote: the incarnation and the public key. The nonce matters
/// only as part of the signed transcript.
fn read_party(r: &mut Reader<'_>) -> Result<(u32, PublicKey), HandshakeError> {
    let incarnation = r.u32()?;
    r.take(NONCE_LEN)?;
    let pk = PublicKey::from_bytes(r.take(SIG_PUBLIC_KEY_LEN)?).expect("length taken");
    Ok((incarnation, pk))
}

fn read_certificate(r: &mut Reader<'_>) -> Result<Option<Certificate>, HandshakeError> {
    match r.u8()? {
        0 => Ok(None),
        1 => Certificate::decode(r.take(Certificate::ENCODED_LEN)?)
            .map(Some)
            .ok_or(HandshakeError::Malformed("certificate")),
        _ => Err(HandshakeError::Malformed("certificate flag")),
    }
}

fn read_end(r: &Reader<'_>) -> Result<(), HandshakeError> {
    if r.is_empty() { Ok(()) } else { Err(HandshakeError::Malformed("trailing bytes")) }
}

fn start_message(kind: MessageKind, initiator: NodeId, responder: NodeId) -> Vec<u8> {
    let mut m = Vec::with_capacity(MAX_MESSAGE_LEN);
    m.push(kind as u8);
    m.extend_from_slice(&initiator.0.to_be_bytes());
    m.extend_from_slice(&responder.0.to_be_bytes());
    m
}

fn push_certificate(m: &mut Vec<u8>, cert: Option<&Certificate>) {
    match cert {
        None => m.push(0),
        Some(c) => {
            m.push(1);
            c.encode(m);
        }
    }
}

fn transcript(init: &[u8], reply_unsigned: &[u8]) -> [u8; 32] {
    Sha256::new().chain_update(DOMAIN).chain_update(init).chain_update(reply_unsigned).finalize().into()
}

fn signed(label: &[u8], hash: &[u8; 32]) -> Vec<u8> {
    [label, &hash[..]].concat()
}

/// Both directions' keys from the shared secret, bound to the whole transcript.
fn session_keys(ss: &SharedSecret, th_final: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    let hk = Hkdf::<Sha256>::new(Some(&th_final[..]), &ss.0);
    let (mut i_to_r, mut r_to_i) = ([0u8; 32], [0u8; 32]);
    hk.expand(b"x0 i->r", &mut i_to_r).expect("valid HKDF length");
    hk.expand(b"x0 r->i", &mut r_to_i).expect("valid HKDF length");
    (i_to_r, r_to_i)
}

/// An admitted neighbour: who it proved to be, and the session to talk to it.
#[derive(Debug)]
pub struct Admitted {
    pub peer: NodeId,
    pub peer_key: KeyId,
    pub peer_incarnation: u32,
    pub session: Session,
}

/// The initiator, waiting for the Reply.
pub struct Initiator {
    me: NodeId,
    peer: NodeId,
    kem: KemKeyPair,
    init: Vec<u8>,
}

impl std::fmt::Debug for Initiator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Initiator({} -> {})", self.me, self.peer)
    }
}

impl Initiator {
    /// Begins a handshake with `peer`: returns the state and the Init message.
    pub fn start(trust: &Trust, rng: &mut CryptoRng, peer: NodeId, incarnation: u32) -> Self {
        let me = trust.node_id();
        let kem = KemKeyPair::generate(rng);
        let mut m = start_message(MessageKind::Init, me, peer);
        push_party(&mut m, trust, rng, incarnation);
        m.extend_from_slice(&kem.encapsulation_key()[..]);
        push_certificate(&mut m, trust.certificate.as_ref());
        Initiator { me, peer, kem, init: m }
    }

    /// The Init message, to send (again, if the Reply is slow).
    pub fn message(&self) -> &[u8] {
        &self.init
    }

    pub fn peer(&self) -> NodeId {
        self.peer
    }

    /// Checks the Reply; on success the peer is admitted and the Finish message is returned
    /// for sending.
    pub fn finish(
        &self,
        trust: &Trust,
        rng: &mut CryptoRng,
        rekey: RekeyPolicy,
        now: Instant,
        now_s: u64,
        reply: &[u8],
    ) -> Result<(Admitted, Vec<u8>), HandshakeError> {
        let route = route(reply)?;
        if route.kind != MessageKind::Reply || route.initiator != self.me || route.responder != self.peer {
            return Err(HandshakeError::Malformed("reply for another handshake"));
        }
        let mut r = Reader::new(reply);
        r.take(IDS_LEN)?;
        let (peer_incarnation, pk) = read_party(&mut r)?;
        let ct: [u8; KEM_CIPHERTEXT_LEN] = r.array()?;
        let cert = read_certificate(&mut r)?;
        let unsigned_len = r.position();
        let sig_r = r.take(SIGNATURE_LEN)?;
        read_end(&r)?;
        trust.admit(self.peer, &pk, cert.as_ref(), now_s)?;
        let th = transcript(&self.init, &reply[..unsigned_len]);
        if !pk.verify(&signed(b"reply", &th), sig_r) {
            return Err(HandshakeError::BadSignature("responder's"));
        }
        let th_final: [u8; 32] = Sha256::new().chain_update(th).chain_update(sig_r).finalize().into();
        let ss = self.kem.decapsulate(&ct);
        let (i_to_r, r_to_i) = session_keys(&ss, &th_final);
        let mut finish = start_message(MessageKind::Finish, self.me, self.peer);
        finish.extend_from_slice(&trust.key.sign(rng, &signed(b"finish", &th_final)).0[..]);
        let admitted = Admitted {
            peer: self.peer,
            peer_key: pk.key_id(),
            peer_incarnation,
            session: Session::new(i_to_r, r_to_i, rekey, now),
        };
        Ok((admitted, finish))
    }
}

/// The responder, waiting for the Finish.
pub struct Responder {
    peer: NodeId,
    peer_key: PublicKey,
    peer_incarnation: u32,
    /// The Init this answers: a retransmitted Init gets the same Reply, not a new one (which
    /// would cost a signature per copy an attacker sends).
    init_hash: [u8; 32],
    th_final: [u8; 32],
    ss: SharedSecret,
    reply: Vec<u8>,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Responder(<- {})", self.peer)
    }
}

impl Responder {
    /// Answers an Init addressed to us: checks the initiator's identity, encapsulates a secret
    /// to its ephemeral key and signs the transcript. Returns the state and the Reply.
    pub fn respond(
        trust: &Trust,
        rng: &mut CryptoRng,
        incarnation: u32,
        now_s: u64,
        init: &[u8],
    ) -> Result<Self, HandshakeError> {
        let route = route(init)?;
        let me = trust.node_id();
        if route.kind != MessageKind::Init || route.responder != me {
            return Err(HandshakeError::Malformed("init for another node"));
        }
        let mut r = Reader::new(init);
        r.take(IDS_LEN)?;
        let (peer_incarnation, pk) = read_party(&mut r)?;
        let ek: [u8; KEM_PUBLIC_KEY_LEN] = r.array()?;
        let cert = read_certificate(&mut r)?;
        read_end(&r)?;
        trust.admit(route.initiator, &pk, cert.as_ref(), now_s)?;
        let (ct, ss) = pq::encapsulate(rng, &ek).map_err(HandshakeError::BadKemKey)?;
        let mut m = start_message(MessageKind::Reply, route.initiator, me);
        push_party(&mut m, trust, rng, incarnation);
        m.extend_from_slice(&ct[..]);
        push_certificate(&mut m, trust.certificate.as_ref());
        let th = transcript(init, &m);
        let sig_r = trust.key.sign(rng, &signed(b"reply", &th));
        m.extend_from_slice(&sig_r.0[..]);
        let th_final = Sha256::new().chain_update(th).chain_update(&sig_r.0[..]).finalize().into();
        Ok(Responder {
            peer: route.initiator,
            peer_key: pk,
            peer_incarnation,
            init_hash: Sha256::digest(init).into(),
            th_final,
            ss,
            reply: m,
        })
    }

    /// The Reply, to send (again, when the same Init arrives again).
    pub fn message(&self) -> &[u8] {
        &self.reply
    }

    pub fn peer(&self) -> NodeId {
        self.peer
    }

    /// Whether `init` is the very Init this state answers.
    pub fn answers(&self, init: &[u8]) -> bool {
        <[u8; 32]>::from(Sha256::digest(init)) == self.init_hash
    }

    /// Checks the Finish: the initiator signed the whole transcript, so it is live and holds
    /// its key. On success the peer is admitted.
    pub fn complete(&self, rekey: RekeyPolicy, now: Instant, finish: &[u8]) -> Result<Admitted, HandshakeError> {
        let route = route(finish)?;
        if route.kind != MessageKind::Finish || route.initiator != self.peer {
            return Err(HandshakeError::Malformed("finish for another handshake"));
        }
        let mut r = Reader::new(finish);
        r.take(IDS_LEN)?;
        let sig_i = r.take(SIGNATURE_LEN)?;
        read_end(&r)?;
        if !self.peer_key.verify(&signed(b"finish", &self.th_final), sig_i) {
            return Err(HandshakeError::BadSignature("initiator's"));
        }
        let (i_to_r, r_to_i) = session_keys(&self.ss, &self.th_final);
        Ok(Admitted {
            peer: self.peer,
            peer_key: self.peer_key.key_id(),
            peer_incarnation: self.peer_incarnation,
            session: Session::new(r_to_i, i_to_r, rekey, now),
        })
    }
}
