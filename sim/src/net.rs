//! The network model: each topology edge is a full-duplex link whose two directions have
//! their own latency, jitter, loss, bandwidth (serialisation delay), bounded queue and
//! impairments, and their own random stream.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;
use x0tta6bl4::scenario::{Degrade, LinkSpec};
use x0tta6bl4::time::duration_nanos;
use x0tta6bl4::units::{Bandwidth, Percent};

const PPM: u32 = 1_000_000;

/// The effective behaviour of one link direction.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct LinkParams {
    pub latency_ns: u64,
    pub jitter_ns: u64,
    pub loss_ppm: u32,
    pub bandwidth: Bandwidth,
    /// Longest wait for the wire before tail drop, from the queue size in full frames.
    pub queue_ns: u64,
    pub duplicate_ppm: u32,
    pub reorder_ppm: u32,
    pub corrupt_ppm: u32,
}

/// Probability that at least one of two independent losses happens, in ppm.
fn combine_loss(a: u32, b: u32) -> u32 {
    let keep = u64::from(PPM - a.min(PPM)) * u64::from(PPM - b.min(PPM)) / u64::from(PPM);
    PPM - keep as u32
}

impl LinkParams {
    /// Scenario defaults, overridden by what the topology file says about this direction.
    pub fn new(spec: &LinkSpec, latency: Option<Duration>, delivery: Option<Percent>) -> Self {
        let bandwidth = spec.bandwidth;
        let frame_ns = duration_nanos(bandwidth.serialization_delay(1500));
        LinkParams {
            latency_ns: duration_nanos(latency.unwrap_or(spec.latency)),
            jitter_ns: duration_nanos(spec.jitter),
            loss_ppm: combine_loss(spec.loss.ppm(), PPM - delivery.unwrap_or(Percent::HUNDRED).ppm()),
            bandwidth,
            queue_ns: frame_ns.saturating_mul(u64::from(spec.queue)),
            duplicate_ppm: 0,
            reorder_ppm: 0,
            corrupt_ppm: 0,
        }
    }

    /// These parameters with an impairment applied on top.
    pub fn degraded(mut self, d: &Degrade) -> Self {
        if let Some(l) = d.latency {
            self.latency_ns += duration_nanos(l);
        }
        if let Some(j) = d.jitter {
            self.jitter_ns = duration_nanos(j);
        }
        if let Some(l) = d.loss {
            self.loss_ppm = combine_loss(self.loss_ppm, l.ppm());
        }
        if let Some(b) = d.bandwidth {
            // Keep the queue's capacity in bytes: a slower link holds the same frames longer.
            let frames = self.queue_ns / duration_nanos(self.bandwidth.serialization_delay(1500)).max(1);
            self.bandwidth = self.bandwidth.min(b);
            self.queue_ns = duration_nanos(self.bandwidth.serialization_delay(1500)).saturating_mul(frames);
        }
        if let Some(p) = d.duplicate {
            self.duplicate_ppm = p.ppm();
        }
        if let Some(p) = d.reorder {
            self.reorder_ppm = p.ppm();
        }
        if let Some(p) = d.corrupt {
            self.corrupt_ppm = p.ppm();
        }
        self
    }
}

/// What happens to one frame sent into a link direction.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    Lost,
    QueueFull,
    Delivered {
        at_ns: u64,
        /// A second copy arrives at this time.
        duplicate_at_ns: Option<u64>,
        /// Flip byte `offset` (modulo the frame length) with `mask`.
        corrupt: Option<(u32, u8)>,
    },
}

#[derive(Debug)]
pub struct Direction {
    /// What frames get now: the link's base behaviour (kept by the simulator's link
    /// record, off this hot one) with its impairments on top.
    pub params: LinkParams,
    busy_until_ns: u64,
    /// Latest arrival scheduled so far: later frames never overtake it unless reordered.
    last_arrival_ns: u64,
    /// Boxed: the generator is 304 bytes, most of them its output buffer, and is drawn
    /// from only on lossy or jittery links, while every frame sent reads the rest of this
    /// record. Inline, an interface took 432 bytes, and a node's six interfaces 41 cache
    /// lines that each hello round walked; boxed, 136 bytes and 13 lines; with the base
    /// behaviour kept in the link record, 88 bytes and 9 lines.
    rng: Box<ChaCha8Rng>,
}

impl Direction {
    pub fn new(params: LinkParams, rng: ChaCha8Rng) -> Self {
        Direction { params, busy_until_ns: 0, last_arrival_ns: 0, rng: Box::new(rng) }
    }

    fn hit(&mut self, ppm: u32) -> bool {
        ppm > 0 && self.rng.random_range(0..PPM) < ppm
    }

    /// Decides the fate of a `len`-byte frame sent at `now_ns`.
    pub fn send(&mut self, now_ns: u64, len: usize) -> Fate {
        let p = self.params;
        if self.hit(p.loss_ppm) {
            return Fate::Lost;
        }
        let start = now_ns.max(self.busy_until_ns);
        if start - now_ns > p.queue_ns {
            return Fate::QueueFull;
        }
        let serialised = start + duration_nanos(p.bandwidth.serialization_delay(len));
        self.busy_until_ns = serialised;
        let jitter = if p.jitter_ns > 0 { self.rng.random_range(0..=p.jitter_ns) } else { 0 };
        let mut at = serialised + p.latency_ns + jitter;
        if self.hit(p.reorder_ppm) {
            // Overtakes whatever is queued or in flight: delivered as if the link were idle.
            at = now_ns + p.latency_ns;
        } else {
            at = at.max(self.last_arrival_ns);
            self.last_arrival_ns = at;
        }
        let duplicate_at_ns = self.hit(p.duplicate_ppm).then_some(at + 1_000);
        let corrupt = if self.hit(p.corrupt_ppm) {
            Some((self.rng.random::<u32>(), self.rng.random_range(1..=255u8)))
        } else {
            None
        };
        Fate::Delivered { at_ns: at, duplicate_at_ns, corrupt }
    }
}
