//! Kernel receive counts for the core's link monitoring (`x0tta6bl4::node::kernel`): the
//! XDP program's count of frames it passed from each neighbour address, beside this
//! driver's count of datagrams from that address it handed to the node. Counting and
//! handing over only; what the difference means is decided in the core.

use crate::xdp::XdpHandle;
use std::time::Duration;
use x0tta6bl4::node::{KernelCounts, Node};
use x0tta6bl4::time::Instant;

/// The shortest time between two samples: each costs a map lookup (a system call) per
/// neighbour, and the core needs them only as often as it wakes on its own.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(10);

/// Datagrams handed to the node per neighbour address (`IPv6` bytes, as XDP keys them).
/// Only the node's current neighbours are counted, so the table is as small as the node's
/// neighbour table however many addresses send to the socket.
#[derive(Default)]
pub struct KernelSampler {
    handed: Vec<([u8; 16], u64)>,
    /// The neighbours' addresses at a sample, kept to reuse its allocation.
    current: Vec<[u8; 16]>,
    next_at: Option<tokio::time::Instant>,
}

impl KernelSampler {
    /// A datagram from `ip` went to the node.
    pub fn handed(&mut self, ip: [u8; 16]) {
        if let Some(entry) = self.handed.iter_mut().find(|e| e.0 == ip) {
            entry.1 += 1;
        }
    }

    /// Hands the node its kernel's counts for every neighbour. Call only when every socket
    /// has been read to empty, so that what the kernel passed and the node did not get is
    /// lost on this host.
    pub fn sample(&mut self, node: &mut Node, now: Instant, xdp: &XdpHandle) {
        let wall = tokio::time::Instant::now();
        if self.next_at.is_some_and(|t| wall < t) {
            return;
        }
        self.next_at = Some(wall + SAMPLE_INTERVAL);
        // Neighbours come and go: a new address starts counting from here (the core takes
        // its first sample as a baseline), a gone one is forgotten.
        let current = &mut self.current;
        current.clear();
        current.extend(node.neighbours().map(|n| n.addr.ip));
        current.sort_unstable();
        current.dedup();
        self.handed.retain(|e| current.binary_search(&e.0).is_ok());
        for &ip in current.iter() {
            if !self.handed.iter().any(|e| e.0 == ip) {
                self.handed.push((ip, 0));
            }
        }
        for &(ip, handed) in &self.handed {
            if let Some(c) = xdp.peer(ip) {
                node.handle_kernel_counts(now, ip, KernelCounts { passed: c.passed, handed });
            }
        }
    }
}
