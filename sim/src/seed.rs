//! Independent random streams derived from the run seed.
//!
//! Every consumer of randomness (each node, each link direction, the workload, each fault,
//! the topology generator, the checkers) draws from its own ChaCha stream keyed by
//! `(seed, domain, a, b)`. Adding a node or a fault therefore leaves every other stream
//! untouched, and no stream depends on the order in which others are used.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use xxhash_rust::xxh3::xxh3_128_with_seed;

/// The 32-byte key of stream `(domain, a, b)` under `seed`.
pub fn key(seed: u64, domain: &str, a: u64, b: u64) -> [u8; 32] {
    let mut input = Vec::with_capacity(domain.len() + 16);
    input.extend_from_slice(domain.as_bytes());
    input.extend_from_slice(&a.to_le_bytes());
    input.extend_from_slice(&b.to_le_bytes());
    let lo = xxh3_128_with_seed(&input, seed);
    let hi = xxh3_128_with_seed(&input, seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut out = [0u8; 32];
    out[..16].copy_from_slice(&lo.to_le_bytes());
    out[16..].copy_from_slice(&hi.to_le_bytes());
    out
}

pub fn stream(seed: u64, domain: &str, a: u64, b: u64) -> ChaCha8Rng {
    ChaCha8Rng::from_seed(key(seed, domain, a, b))
}
