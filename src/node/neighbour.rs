//! Neighbour state: link sensing (hello history, IHU, RTT) and the per-neighbour failure
//! detector state. Pure bookkeeping; the decisions that emit events live in `node`.

use super::detector::{DetectorParams, PhiDetector};
use super::kernel::{KERNEL_GRACE_HELLOS, KernelCounts};
use crate::ids::{IfIndex, NodeId, PeerAddr};
use crate::time::Instant;
use crate::wire::{METRIC_INFINITY, seqno_newer};
use std::time::Duration;

/// Cost of one perfect link, as in Babel's ETX: the metric counts hops in units of 256.
pub const LINK_COST_UNIT: u16 = 256;
/// Hellos remembered for the receive-quality estimate.
const HISTORY_LEN: u8 = 16;

/// Where a neighbour stands, as the rest of the world sees it in events.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NeighbourState {
    /// Bidirectional: we hear it, and its IHUs say it hears us.
    Up,
    /// Its heartbeats are overdue; direct pings are confirming.
    Suspected,
    /// Declared failed: routes through it are gone.
    Down,
}

/// The internal lifecycle, with the states events never report.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Link {
    /// We hear its hellos but have no IHU proving it hears us.
    Heard,
    Up,
    Suspected,
    Down,
}

#[derive(Copy, Clone, Debug)]
pub(crate) struct Confirm {
    pub nonce: u32,
    pub pings_sent: u8,
    /// When the next ping goes out, or (after the last ping) when silence means down.
    pub next_at: Instant,
}

/// One neighbour's entry. The failure detector comes last (`repr(C)`), so the unused tail
/// of its window ends the entry: [`Neighbour::bytes_used`] is what a frame from it reads.
#[derive(Clone, Debug)]
#[repr(C)]
pub(crate) struct Neighbour {
    pub iface: IfIndex,
    pub id: NodeId,
    pub addr: PeerAddr,
    pub incarnation: u32,
    pub link: Link,
    /// When `link` last changed; used to expire one-way and long-dead entries.
    pub since: Instant,
    // Receive side (Babel hello history).
    last_hello_seqno: u16,
    history: u16,
    history_len: u8,
    pub announced_interval: Duration,
    pub last_hello_rx: Instant,
    pub last_hello_ts_us: u32,
    // What the neighbour tells us about our hellos.
    pub txcost: u16,
    srtt_us: Option<u32>,
    pub confirm: Option<Confirm>,
    /// Cached link cost; `u16::MAX` when not usable.
    pub cost: u16,
    /// The kernel's last receive counts for this neighbour's address, and when they were
    /// sampled (see `kernel`).
    pub kernel: Option<(KernelCounts, Instant)>,
    /// A frame from this neighbour reached our kernel after this instant and never reached
    /// the node (see `kernel`); `Instant::ZERO` until that happens.
    pub kernel_heard_after: Instant,
    pub detector: PhiDetector,
}

// A neighbour slot's `Option` costs no tag before the entry, so the entry's offsets are
// the slot's.
const _: () = assert!(size_of::<Option<Neighbour>>() == size_of::<Neighbour>());

impl Neighbour {
    /// The leading bytes of an entry that a node with detector parameters `p` ever reads.
    pub fn bytes_used(p: &DetectorParams) -> usize {
        std::mem::offset_of!(Neighbour, detector) + PhiDetector::bytes_used(p)
    }

    pub fn new(iface: IfIndex, id: NodeId, addr: PeerAddr, incarnation: u32, now: Instant, p: &DetectorParams) -> Self {
        let announced = Duration::from_millis(100);
        Neighbour {
            iface,
            id,
            addr,
            incarnation,
            link: Link::Heard,
            since: now,
            last_hello_seqno: 0,
            history: 0,
            history_len: 0,
            announced_interval: announced,
            last_hello_rx: now,
            last_hello_ts_us: 0,
            txcost: METRIC_INFINITY,
            srtt_us: None,
            detector: PhiDetector::new(now, p, announced),
            confirm: None,
            cost: METRIC_INFINITY,
            kernel: None,
            kernel_heard_after: Instant::ZERO,
        }
    }

    /// Forgets everything learnt about the link (after it was down or the peer restarted).
    pub fn reset_link(&mut self, incarnation: u32, now: Instant, p: &DetectorParams) {
        self.incarnation = incarnation;
        self.history = 0;
        self.history_len = 0;
        self.txcost = METRIC_INFINITY;
        self.srtt_us = None;
        self.detector.reset(now, p, self.announced_interval);
        self.confirm = None;
        self.cost = METRIC_INFINITY;
    }

    /// Records a hello with sequence number `seqno` in the receive history.
    pub fn record_hello(&mut self, seqno: u16, interval: Duration, timestamp_us: u32, now: Instant) {
        if self.history_len == 0 {
            self.history = 1;
            self.history_len = 1;
        } else if seqno_newer(seqno, self.last_hello_seqno) {
            let gap = seqno.wrapping_sub(self.last_hello_seqno);
            if gap >= u16::from(HISTORY_LEN) {
                self.history = 1;
            } else {
                self.history = (self.history << gap) | 1;
            }
            self.history_len = (u16::from(self.history_len) + gap).min(u16::from(HISTORY_LEN)) as u8;
        } else if seqno != self.last_hello_seqno {
            // Far in the past: the sender lost its counter without a new incarnation.
            // Start over rather than count phantom losses.
            self.history = 1;
            self.history_len = 1;
        }
        self.last_hello_seqno = seqno;
        self.announced_interval = interval;
        self.last_hello_rx = now;
        self.last_hello_ts_us = timestamp_us;
    }

    /// Our receive cost for this neighbour's hellos: 256 / (fraction received), Babel's
    /// rxcost, from the last 16 expected hellos.
    pub fn rxcost(&self) -> u16 {
        let mask: u16 = if self.history_len >= 16 { u16::MAX } else { (1u16 << self.history_len) - 1 };
        let received = (self.history & mask).count_ones();
        if received == 0 {
            return METRIC_INFINITY;
        }
        let cost = u32::from(LINK_COST_UNIT) * u32::from(self.history_len) / received;
        cost.min(u32::from(METRIC_INFINITY - 1)) as u16
    }

    pub fn record_rtt(&mut self, sample_us: u32) {
        self.srtt_us = Some(match self.srtt_us {
            None => sample_us,
            Some(s) => ((u64::from(s) * 7 + u64::from(sample_us)) / 8) as u32,
        });
    }

    pub fn srtt(&self) -> Option<Duration> {
        self.srtt_us.map(|us| Duration::from_micros(u64::from(us)))
    }

    /// The ETX-like cost of routing over this link: `rxcost * txcost / 256`, plus a penalty
    /// that grows linearly with the smoothed RTT between `rtt_min` and `rtt_max`.
    /// Infinite unless the link is usable for routing.
    pub fn compute_cost(&self, rtt_min: Duration, rtt_max: Duration, rtt_max_penalty: u16) -> u16 {
        if !matches!(self.link, Link::Up | Link::Suspected) {
            return METRIC_INFINITY;
        }
        let etx = self.cost_etx();
        if etx == METRIC_INFINITY {
            return METRIC_INFINITY;
        }
        let etx = u32::from(etx);
        let penalty = match self.srtt() {
            Some(rtt) if rtt > rtt_min => {
                let span = (rtt_max - rtt_min).as_micros().max(1);
                let over = (rtt - rtt_min).as_micros().min(span);
                (u128::from(rtt_max_penalty) * over / span) as u32
            }
            _ => 0,
        };
        (etx + penalty).clamp(1, u32::from(METRIC_INFINITY - 1)) as u16
    }

    /// The pure loss part of the link cost (no RTT penalty), `LINK_COST_UNIT` on a clean
    /// link; infinite when either direction is unmeasured.
    pub fn cost_etx(&self) -> u16 {
        let (rx, tx) = (self.rxcost(), self.txcost);
        if rx == METRIC_INFINITY || tx == METRIC_INFINITY {
            return METRIC_INFINITY;
        }
        (u32::from(rx) * u32::from(tx) / u32::from(LINK_COST_UNIT)).min(u32::from(METRIC_INFINITY - 1)) as u16
    }

    /// When an up neighbour becomes suspected for silence: the detector's deadline, moved
    /// later while our kernel has seen frames from it that the node has not (counted as a
    /// heartbeat at the instant they are known to have arrived after), but never past
    /// `KERNEL_GRACE_HELLOS` announced intervals after the last frame the node heard.
    pub fn suspect_at(&self) -> Instant {
        let (deadline, last) = (self.detector.deadline(), self.detector.last());
        if self.kernel_heard_after <= last {
            return deadline;
        }
        let tolerated = deadline.saturating_since(last);
        let cap = last + self.announced_interval * KERNEL_GRACE_HELLOS;
        deadline.max((self.kernel_heard_after + tolerated).min(cap))
    }

    /// Whether the kernel's evidence holds an up neighbour's suspicion past the detector's
    /// deadline.
    pub fn suspicion_put_off(&self) -> bool {
        self.link == Link::Up && self.suspect_at() > self.detector.deadline()
    }

    /// Whether our hellos should carry an IHU for this neighbour.
    pub fn wants_ihu(&self) -> bool {
        matches!(self.link, Link::Heard | Link::Up | Link::Suspected)
    }

    pub fn public_state(&self) -> Option<NeighbourState> {
        match self.link {
            Link::Heard => None,
            Link::Up => Some(NeighbourState::Up),
            Link::Suspected => Some(NeighbourState::Suspected),
            Link::Down => Some(NeighbourState::Down),
        }
    }
}
