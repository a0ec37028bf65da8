//! Kernel receive counts: a second, independent view of each link's receive side.
//!
//! In live mode the XDP program counts, per source address, the protocol's frames the
//! kernel passed up its stack, and the driver counts the datagrams it handed to the node.
//! A frame the kernel passed and the node never received was lost on this host (a full
//! socket buffer, a firewall rule), not on the link, and it proves the neighbour was still
//! sending when it arrived. Link monitoring uses both facts:
//! - `NodeStats::kernel_unhandled` counts such frames, so that an operator can tell loss on
//!   this host from loss on the wire (which the hello history measures as before);
//! - an up neighbour is not suspected for silence while the kernel keeps receiving its
//!   frames: each such frame counts as a heartbeat for the suspicion deadline, up to
//!   `KERNEL_GRACE_HELLOS` announced intervals after the last frame the node itself heard.
//!   A host too busy to read its sockets would otherwise suspect every neighbour at once
//!   and reroute around links that are fine. The cap keeps a host that never reads (or a
//!   flood filling the socket under a neighbour's address) from hiding a real failure for
//!   longer than that.
//!
//! Only the suspicion moves. A suspected neighbour is still refuted only by frames the
//! node reads: the kernel's count cannot tell a pong from a hello, nor a neighbour's frame
//! from one forged under its address.
//!
//! The simulator has no kernel and never calls this; its runs are unchanged by it.

use super::Node;
use crate::time::Instant;

/// How many announced hello intervals after the last frame the node heard from a
/// neighbour the kernel's evidence can put its suspicion off (see the module comment).
pub const KERNEL_GRACE_HELLOS: u32 = 5;

/// What the host counted for one neighbour address since some start of the driver's
/// choosing. Both counts only grow while the driver runs; a decrease means the driver
/// started counting again, and the next sample is a new baseline.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelCounts {
    /// Frames from the address that the kernel passed up to the protocol's socket
    /// (received and not dropped by quarantine or injected loss).
    pub passed: u64,
    /// Datagrams from the address that the driver handed to [`Node::handle_datagram`].
    pub handed: u64,
}

impl Node {
    /// The host's counts for frames from address `ip`, sampled at `now`. Drivers call this
    /// right after handing the node every datagram their sockets held, so that a frame the
    /// kernel passed and the node has not received is, but for one arriving during the
    /// sample, a frame lost on this host. Several neighbours at one address (one host on
    /// two links) share the counts.
    pub fn handle_kernel_counts(&mut self, now: Instant, ip: [u8; 16], counts: KernelCounts) {
        self.advance(now);
        for slot in 0..self.neighbours.len() {
            let Some(nb) = self.neighbours[slot].as_mut().filter(|nb| nb.addr.ip == ip) else { continue };
            let Some((before, at)) = nb.kernel.replace((counts, now)) else { continue };
            let (Some(passed), Some(handed)) =
                (counts.passed.checked_sub(before.passed), counts.handed.checked_sub(before.handed))
            else {
                continue;
            };
            if passed <= handed {
                continue;
            }
            // More frames arrived since the last sample than the node received: at least one
            // of them arrived after `at` and is lost here (or, rarely, arrived just now).
            self.stats.kernel_unhandled = self.stats.kernel_unhandled.saturating_add(passed - handed);
            let was_put_off = nb.suspicion_put_off();
            nb.kernel_heard_after = nb.kernel_heard_after.max(at);
            if !was_put_off && nb.suspicion_put_off() {
                self.stats.kernel_deferrals += 1;
            }
            self.refresh_deadline(slot);
        }
        self.finish_input();
    }
}
