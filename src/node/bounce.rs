//! Port-unreachable reports: the fast path to a neighbour whose process died while its
//! host stayed up, the commonest failure of a router daemon.
//!
//! A frame sent to an address where no process listens any more comes back from the
//! neighbour's kernel as an ICMPv6 port unreachable quoting the frame. Silence says the
//! same only after the failure detector has waited out several hello intervals; the report
//! says it one round trip after the next unicast frame. Reports are trusted only as far
//! as they prove themselves:
//! - The quoted frame must be one this node sent to that neighbour: its own id in the
//!   clear, or, on a secured mesh, a sealed frame that authenticates under the session
//!   with that neighbour (which only a party that saw the frame can quote).
//! - Such a report only makes an up neighbour *suspected*: the confirmation pings go out
//!   at once, and an answer refutes the suspicion as it refutes one raised by silence.
//! - A report quoting the current confirmation ping (its nonce is fresh) declares the
//!   neighbour down: that ping reached a host with nobody listening.
//!
//! Multicast frames draw no reports (RFC 4443 2.4 (e)), so a mesh whose neighbours only
//! exchange multicast hellos still relies on silence; unicast traffic (data forwarded
//! through the neighbour, or a secured mesh, which seals every frame to each neighbour
//! separately) is what turns a crash into a report.

use super::Node;
use super::neighbour::Link;
use crate::ids::{IfIndex, PeerAddr};
use crate::time::Instant;
use crate::wire::{self, FrameKind, Tlv, TlvIter};

/// What a quoted frame proves.
enum Quoted {
    /// Not provably ours.
    Foreign,
    /// Ours, carrying this confirmation-ping nonce if any.
    Own { ping: Option<u32> },
}

impl Node {
    /// The network reported that a frame this node sent to `dst` on `iface` found no
    /// process listening there (an ICMPv6 port unreachable); `quoted` is the frame as the
    /// report quotes it. Drivers pass every such report; what it proves is decided here.
    pub fn handle_unreachable(&mut self, now: Instant, iface: IfIndex, dst: PeerAddr, quoted: &[u8]) {
        self.advance(now);
        self.stats.unreachable_rx += 1;
        let slot = (0..self.neighbours.len())
            .find(|&s| self.neighbours[s].as_ref().is_some_and(|nb| nb.iface == iface && nb.addr == dst));
        // The quote is only decoded (and on a secured mesh, decrypted) for a neighbour.
        match slot.map(|slot| (slot, self.quoted(iface, dst, quoted))) {
            Some((slot, Quoted::Own { ping })) => self.on_unreachable(slot, ping),
            _ => self.stats.unreachable_ignored += 1,
        }
        self.finish_input();
    }

    fn on_unreachable(&mut self, slot: usize, ping: Option<u32>) {
        let (now, hello_interval) = (self.now, self.cfg.hello_interval);
        let nb = self.nb(slot);
        match nb.link {
            // A neighbour that has just come up (or just refuted a suspicion) is left to
            // its hellos for an interval: reports about frames sent before it restarted
            // are stale, and a stream of forged ones must not keep it pinged.
            Link::Up if now >= nb.since + hello_interval => {
                self.stats.unreachable_suspicions += 1;
                self.suspect(slot);
            }
            Link::Suspected if ping.is_some() && ping == nb.confirm.map(|c| c.nonce) => {
                self.stats.unreachable_downs += 1;
                self.neighbour_lost(slot);
            }
            _ => self.stats.unreachable_ignored += 1,
        }
    }

    /// Whether `frame`, quoted by a report about `dst` on `iface`, is provably a frame this
    /// node sent there, and which ping it carried.
    fn quoted(&mut self, iface: IfIndex, dst: PeerAddr, frame: &[u8]) -> Quoted {
        let Ok((hdr, body)) = wire::decode_frame(frame) else { return Quoted::Foreign };
        if hdr.sender != self.id {
            return Quoted::Foreign;
        }
        match (hdr.kind, self.security.is_some()) {
            (FrameKind::Control, false) => Quoted::Own { ping: ping_in(body) },
            (FrameKind::Data, false) => Quoted::Own { ping: None },
            (FrameKind::Sealed, true) => {
                let Ok(sealed) = wire::decode_sealed(frame) else { return Quoted::Foreign };
                match self.open_own(iface, dst, &sealed) {
                    Some(inner) => match wire::inner_kind(inner[0]) {
                        Ok(FrameKind::Control) => Quoted::Own { ping: ping_in(&inner[1..]) },
                        Ok(_) => Quoted::Own { ping: None },
                        Err(_) => Quoted::Foreign,
                    },
                    None => Quoted::Foreign,
                }
            }
            _ => Quoted::Foreign,
        }
    }
}

/// The nonce of the first ping in a control body of ours.
fn ping_in(body: &[u8]) -> Option<u32> {
    TlvIter::new(body).find_map(|t| match t {
        Ok(Tlv::Ping { nonce }) => Some(nonce),
        _ => None,
    })
}
