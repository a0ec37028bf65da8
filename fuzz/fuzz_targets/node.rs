//! A node with link security fed arbitrary datagrams: well-framed beacons, handshake
//! fragments and sealed frames with fuzzed bodies (so the checksum never hides the code
//! behind it), raw bytes, port-unreachable reports (raw, framed as our own, or quoting a
//! frame the node really sent), kernel receive counts, and clock steps. Nothing panics, every table stays within
//! its limit, and nothing unauthenticated makes a neighbour.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;
use std::time::Duration;
use x0tta6bl4::config::ProtocolConfig;
use x0tta6bl4::ids::{IfIndex, NodeId, PeerAddr};
use x0tta6bl4::node::{KernelCounts, Node};
use x0tta6bl4::pq::{CryptoRng, SigningKey};
use x0tta6bl4::secure::{Certificate, Trust, TrustPolicy};
use x0tta6bl4::time::Instant;

/// The node's identity, built once per process: two ML-DSA-65 key generations and a
/// certificate signature per input were over four fifths of each run's time. Every input still
/// starts from a fresh `Node` holding an equal `Trust`, so runs stay independent.
static TRUST: LazyLock<Trust> = LazyLock::new(|| {
    let anchor = SigningKey::generate(&mut CryptoRng::from_seed([1; 32]));
    let key = SigningKey::generate(&mut CryptoRng::from_seed([2; 32]));
    let certificate = Certificate::issue(&anchor, &mut CryptoRng::from_seed([3; 32]), NodeId(5), key.public().key_id(), u64::MAX);
    Trust { key, certificate: Some(certificate), policy: TrustPolicy::Anchor(anchor.public().clone()), clock_origin_s: 0 }
});

/// A frame of `kind` from `sender` around `body`, with a correct length and checksum.
fn frame(kind: u8, sender: u32, body: &[u8]) -> Vec<u8> {
    let body = &body[..body.len().min(1400)];
    let mut f = vec![b'x', b'0', 1, kind];
    f.extend_from_slice(&sender.to_be_bytes());
    f.extend_from_slice(&(body.len() as u16).to_be_bytes());
    f.extend_from_slice(body);
    let crc = crc32fast::hash(&f);
    f.extend_from_slice(&crc.to_be_bytes());
    f
}

fuzz_target!(|data: &[u8]| {
    let mut cfg = ProtocolConfig::default();
    cfg.limits.max_neighbours = 4;
    let mut node = Node::new_secure(cfg, TRUST.clone(), [9; 32], Instant::ZERO).expect("valid config");
    node.add_interface(Instant::ZERO);
    let mut now = Instant::ZERO;
    let mut out = Vec::new();
    let mut last_sent = Vec::new();
    // Each step: op byte, length byte, then that many bytes.
    let mut rest = data;
    while rest.len() >= 2 {
        let (op, len) = (rest[0], usize::from(rest[1]) * 8);
        let take = len.min(rest.len() - 2);
        let arg = &rest[2..2 + take];
        rest = &rest[2 + take..];
        let sender = u32::from(op >> 4);
        let from = PeerAddr::synthetic(NodeId(sender));
        match op & 0x0f {
            0 => now = now + Duration::from_millis(u64::from(len as u32 + 1) * 10),
            1 => node.handle_datagram(now, IfIndex(0), from, arg),
            k @ 2..=6 => node.handle_datagram(now, IfIndex(0), from, &frame(k - 1, sender, arg)),
            7 => node.handle_unreachable(now, IfIndex(0), from, arg),
            8 => {
                let kind = arg.first().map_or(1, |k| k % 5 + 1);
                node.handle_unreachable(now, IfIndex(0), from, &frame(kind, 5, arg));
            }
            9 => node.handle_unreachable(now, IfIndex(0), from, &last_sent),
            10 => {
                let word = |i: usize| arg.get(i..i + 8).map_or(0, |b| u64::from_be_bytes(b.try_into().expect("8 bytes")));
                node.handle_kernel_counts(now, from.ip, KernelCounts { passed: word(0), handed: word(8) });
            }
            _ => node.handle_timeout(now.max(node.poll_timeout())),
        }
        while node.poll_transmit(&mut out).is_some() {
            assert!(out.len() <= x0tta6bl4::wire::MAX_FRAME_LEN);
            last_sent.clone_from(&out);
        }
        while node.poll_event().is_some() {}
    }
    // Nobody holds our anchor's key but us: nothing can have been admitted or routed.
    assert_eq!(node.admitted().count(), 0);
    assert_eq!(node.neighbours().count(), 0);
});
