//! Zero-trust links: who a node is (an ML-DSA-65 key), whom it admits (a trust policy), how
//! two neighbours agree on keys (the handshake) and how every later frame is protected (a
//! session). Pure logic like the rest of the core: time, randomness and key material are
//! inputs.
//!
//! # Identity and node ids
//!
//! A node's identity is its ML-DSA-65 key pair; [`KeyId`] is SHA-256 of the public key. A
//! self-certifying node's router id is derived from it ([`KeyId::node_id`]) and an allowlist
//! policy checks exactly that. A trust anchor can instead certify a (node id, key) pair with
//! an expiry, which is how the simulator gives its dense ids `0..n` real keys; see
//! ARCHITECTURE.md, "Identity".

pub mod handshake;
pub mod session;

use crate::ids::NodeId;
use crate::pq::{self, CryptoRng, KeyId, PublicKey, SigningKey};
use std::collections::BTreeSet;
use thiserror::Error;

/// A trust anchor's statement "`key` is node `node` until `not_after_s`".
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    pub node: NodeId,
    pub key: KeyId,
    /// Expiry, in seconds on the mesh's clock (Unix time on a live mesh).
    pub not_after_s: u64,
    pub signature: pq::Signature,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Certificate({} = {}, until {} s)", self.node, self.key, self.not_after_s)
    }
}

impl Certificate {
    pub const ENCODED_LEN: usize = 4 + 32 + 8 + pq::SIGNATURE_LEN;
    const DOMAIN: &'static [u8] = b"x0tta6bl4 certificate v1";

    fn signed_bytes(node: NodeId, key: &KeyId, not_after_s: u64) -> Vec<u8> {
        let mut m = Vec::with_capacity(Self::DOMAIN.len() + 44);
        m.extend_from_slice(Self::DOMAIN);
        m.extend_from_slice(&node.0.to_be_bytes());
        m.extend_from_slice(&key.0);
        m.extend_from_slice(&not_after_s.to_be_bytes());
        m
    }

    /// The anchor signs the key with id `key` as node `node` until `not_after_s`. The id is
    /// enough: an operator certifies a node from the key id it logs, without its public key.
    pub fn issue(anchor: &SigningKey, rng: &mut CryptoRng, node: NodeId, key: KeyId, not_after_s: u64) -> Self {
        let signature = anchor.sign(rng, &Self::signed_bytes(node, &key, not_after_s));
        Certificate { node, key, not_after_s, signature }
    }

    /// Whether `anchor` signed this certificate (expiry is not judged here).
    pub fn is_signed_by(&self, anchor: &PublicKey) -> bool {
        anchor.verify(&Self::signed_bytes(self.node, &self.key, self.not_after_s), &self.signature.0[..])
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.node.0.to_be_bytes());
        out.extend_from_slice(&self.key.0);
        out.extend_from_slice(&self.not_after_s.to_be_bytes());
        out.extend_from_slice(&self.signature.0[..]);
    }

    /// Parses exactly [`Certificate::ENCODED_LEN`] bytes; the signature is checked later,
    /// by [`Trust::admit`].
    pub fn decode(b: &[u8]) -> Option<Self> {
        if b.len() != Self::ENCODED_LEN {
            return None;
        }
        let node = NodeId(u32::from_be_bytes(b[0..4].try_into().ok()?));
        let key = KeyId(b[4..36].try_into().ok()?);
        let not_after_s = u64::from_be_bytes(b[36..44].try_into().ok()?);
        let signature = pq::Signature(Box::new(b[44..].try_into().ok()?));
        Some(Certificate { node, key, not_after_s, signature })
    }
}

/// Whom a node admits as a neighbour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustPolicy {
    /// These keys, each as the node id derived from it.
    Allowlist(BTreeSet<KeyId>),
    /// Any key with an unexpired certificate signed by this anchor, as the node id the
    /// certificate names.
    Anchor(PublicKey),
}

/// Why a peer's identity was refused. Each has its own counter.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Error)]
pub enum Refusal {
    #[error("key {0} is not on the allowlist")]
    UnknownKey(KeyId),
    #[error("claims node id {claimed} but its key {key} derives {derived}")]
    IdMismatch { claimed: NodeId, key: KeyId, derived: NodeId },
    #[error("no certificate, and the trust policy is a trust anchor")]
    NoCertificate,
    #[error("the certificate is not signed by our trust anchor")]
    BadCertificate,
    #[error("the certificate is for node {cert_node} with key {cert_key}, not this peer")]
    CertificateMismatch { cert_node: NodeId, cert_key: KeyId },
    #[error("the certificate expired at {not_after_s} s (now {now_s} s)")]
    Expired { not_after_s: u64, now_s: u64 },
}

impl Refusal {
    /// Whether the peer claimed an identity that is not its own (an id its key does not
    /// derive, a certificate for another node or key, or a forged certificate), as opposed
    /// to one our policy does not accept (an unknown key, none or an expired certificate).
    pub fn is_false_claim(&self) -> bool {
        matches!(self, Refusal::IdMismatch { .. } | Refusal::CertificateMismatch { .. } | Refusal::BadCertificate)
    }
}

/// This node's identity and its trust policy: everything the handshake needs besides time
/// and randomness.
#[derive(Clone, Debug)]
pub struct Trust {
    pub key: SigningKey,
    /// Presented to peers when the policy is a trust anchor.
    pub certificate: Option<Certificate>,
    pub policy: TrustPolicy,
    /// The mesh's clock in seconds when this node's clock reads zero: certificate expiry is
    /// judged on `clock_origin_s + now`. Unix time at start on a live mesh.
    pub clock_origin_s: u64,
}

impl Trust {
    /// Checks a peer claiming to be `claimed` with key `key` and `certificate`, at `now_s`
    /// on the mesh's clock.
    pub fn admit(&self, claimed: NodeId, key: &PublicKey, certificate: Option<&Certificate>, now_s: u64) -> Result<(), Refusal> {
        let id = key.key_id();
        match &self.policy {
            TrustPolicy::Allowlist(keys) => {
                if !keys.contains(&id) {
                    return Err(Refusal::UnknownKey(id));
                }
                if id.node_id() != claimed {
                    return Err(Refusal::IdMismatch { claimed, key: id, derived: id.node_id() });
                }
            }
            TrustPolicy::Anchor(anchor) => {
                let cert = certificate.ok_or(Refusal::NoCertificate)?;
                if cert.node != claimed || cert.key != id {
                    return Err(Refusal::CertificateMismatch { cert_node: cert.node, cert_key: cert.key });
                }
                if !cert.is_signed_by(anchor) {
                    return Err(Refusal::BadCertificate);
                }
                if cert.not_after_s < now_s {
                    return Err(Refusal::Expired { not_after_s: cert.not_after_s, now_s });
                }
            }
        }
        Ok(())
    }

    /// The node id this identity goes by.
    pub fn node_id(&self) -> NodeId {
        match &self.certificate {
            Some(c) => c.node,
            None => self.key.public().key_id().node_id(),
        }
    }
}
