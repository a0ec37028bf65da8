//! Identities of simulated nodes: what key files and a certificate authority are on a real
//! mesh, derived from the run seed so that a seed gives one fingerprint.
//!
//! The anchor's key, every node's ML-DSA-65 key and the randomness of every certificate
//! signature come from their own seed streams (FIPS 204 key generation is a function of a
//! 32-byte seed), so adding a node changes no other node's key. A node's certificate is
//! issued on its first boot and kept: a restarted node comes back with the same identity,
//! as a real one reading its key file would.

use crate::seed;
use x0tta6bl4::ids::NodeId;
use x0tta6bl4::pq::{CryptoRng, SigningKey};
use x0tta6bl4::scenario::{LinkSecurity, TrustKind};
use x0tta6bl4::secure::{Certificate, Trust, TrustPolicy};

pub struct Identities {
    seed: u64,
    anchor: SigningKey,
    not_after_s: u64,
    certificates: Vec<Option<Certificate>>,
}

impl Identities {
    pub fn new(cfg: &LinkSecurity, seed: u64, nodes: u32) -> Self {
        let TrustKind::Anchor = cfg.trust;
        let anchor = SigningKey::generate(&mut CryptoRng::from_seed(seed::key(seed, "anchor", 0, 0)));
        Identities {
            seed,
            anchor,
            not_after_s: cfg.certificate_lifetime.map_or(u64::MAX, |d| d.as_secs()),
            certificates: vec![None; nodes as usize],
        }
    }

    /// Node `i`'s identity, for one boot.
    pub fn trust(&mut self, i: u32) -> Trust {
        let key = self.key(i);
        let certificate = self.certificate(i, &key);
        self.with(key, certificate)
    }

    /// What node `i` can present when it poses as `victim`: the victim's certificate, which
    /// is public, and its own key, since the victim's never leaves the victim.
    pub fn impostor(&mut self, i: u32, victim: u32) -> Trust {
        let victim_key = self.key(victim);
        let certificate = self.certificate(victim, &victim_key);
        self.with(self.key(i), certificate)
    }

    fn key(&self, i: u32) -> SigningKey {
        SigningKey::generate(&mut CryptoRng::from_seed(seed::key(self.seed, "identity", u64::from(i), 0)))
    }

    fn certificate(&mut self, i: u32, key: &SigningKey) -> Certificate {
        self.certificates[i as usize]
            .get_or_insert_with(|| {
                let mut rng = CryptoRng::from_seed(seed::key(self.seed, "certificate", u64::from(i), 0));
                Certificate::issue(&self.anchor, &mut rng, NodeId(i), key.public().key_id(), self.not_after_s)
            })
            .clone()
    }

    fn with(&self, key: SigningKey, certificate: Certificate) -> Trust {
        Trust {
            key,
            certificate: Some(certificate),
            policy: TrustPolicy::Anchor(self.anchor.public().clone()),
            clock_origin_s: 0,
        }
    }
}
