//! PHOLD, the standard benchmark of discrete-event engines (Fujimoto, 1990).
//!
//! `lps` logical processes start with `events_per_lp` events each. Handling an event at
//! time `t` schedules one new event at `t + lookahead + Exp(mean)`, at a random LP with
//! probability `remote` and at the same LP otherwise. The work per event is deliberately
//! tiny, so the benchmark measures the engine: the queue and the dispatch loop.
//!
//! The same model runs twice: on the simulator's [`EventQueue`], and on a raw std
//! `BinaryHeap` as the baseline a bare Rust heap sets. Both draw the same random numbers
//! in the same order and must produce the same checksum, so they did the same work.
//! Timing happens in the caller (the console), since wall time never enters `sim/`.

use crate::queue::EventQueue;
use crate::seed;
use rand::{Rng, RngExt};
use rand_distr::Exp1;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// One time unit of the model, in nanoseconds (the mean of the exponential increment).
const UNIT_NS: f64 = 1_000_000.0;

#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Phold {
    pub lps: u32,
    pub events_per_lp: u32,
    /// Share of new events sent to another LP.
    pub remote: f64,
    /// Minimum timestamp increment, in units of the exponential's mean.
    pub lookahead: f64,
    /// Events to process before stopping.
    pub events: u64,
    pub seed: u64,
}

/// Initial events a model may start with. Each is 24 bytes in either queue (the two runs
/// take turns), so this is 3 GiB; an unchecked `lps × events_per_lp` asked for hundreds of
/// gigabytes and the process was killed for it.
pub const INITIAL_EVENTS_MAX: u64 = 1 << 27;

impl Phold {
    /// Events the queue holds from the start: `lps × events_per_lp`, without overflow.
    pub fn initial_events(&self) -> u64 {
        u64::from(self.lps) * u64::from(self.events_per_lp)
    }
}

impl Default for Phold {
    fn default() -> Self {
        Phold { lps: 1024, events_per_lp: 16, remote: 0.1, lookahead: 0.1, events: 20_000_000, seed: 1 }
    }
}

/// What a run did: enough to check two runs did the same work.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PholdOutcome {
    pub events: u64,
    /// Simulated time of the last event, ns.
    pub end_ns: u64,
    /// Order-sensitive hash of (time, LP) of every event processed.
    pub checksum: u64,
}

/// A SplitMix64 stream: eight bytes of state per LP, so a model of 100,000 LPs measures
/// the queue rather than cache misses into random-number generator state. (The mesh
/// simulation's streams are ChaCha; PHOLD's job is to exercise the engine.)
struct SplitMix(u64);

impl rand::TryRng for SplitMix {
    type Error = std::convert::Infallible;

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Ok(z ^ (z >> 31))
    }

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        self.try_next_u64().map(|x| (x >> 32) as u32)
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            let x = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&x[..chunk.len()]);
        }
        Ok(())
    }
}

/// Per-LP random streams and the increment/destination draws both runs share.
struct Model {
    rngs: Vec<SplitMix>,
    /// `remote` in 1/4096ths: compared with the 12 low bits of the draw.
    remote_4096: u64,
    lookahead_ns: f64,
    lps: u32,
}

impl Model {
    fn new(p: &Phold) -> Self {
        assert!(p.lps >= 1, "PHOLD needs at least one LP");
        assert!(p.initial_events() <= INITIAL_EVENTS_MAX, "{} initial events, over INITIAL_EVENTS_MAX", p.initial_events());
        Model {
            rngs: (0..p.lps)
                .map(|i| SplitMix(u64::from_le_bytes(seed::key(p.seed, "phold", u64::from(i), 0)[..8].try_into().expect("8 bytes"))))
                .collect(),
            remote_4096: (p.remote.clamp(0.0, 1.0) * 4096.0).round() as u64,
            lookahead_ns: p.lookahead.max(0.0) * UNIT_NS,
            lps: p.lps,
        }
    }

    /// The increment and destination of the event LP `lp` schedules next: Exp(1) by the
    /// ziggurat method (no logarithm on the common path), then a 12-bit remote decision;
    /// a remote event draws once more for its destination.
    #[inline]
    fn next(&mut self, lp: u32) -> (u64, u32) {
        let rng = &mut self.rngs[lp as usize];
        let e: f64 = rng.sample(Exp1);
        let dt = (self.lookahead_ns + e * UNIT_NS) as u64;
        let dest = if rng.next_u32() & 0xFFF < self.remote_4096 as u32 {
            // Multiply-shift into 0..lps: no rejection loop, bias below 2^-32.
            ((u128::from(rng.next_u64()) * u128::from(self.lps)) >> 64) as u32
        } else {
            lp
        };
        (dt.max(1), dest)
    }
}

#[inline]
fn mix(h: u64, t: u64, lp: u32) -> u64 {
    (h ^ t ^ (u64::from(lp) << 40)).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(23)
}

/// The model on the simulator's event queue.
pub fn run_engine(p: &Phold) -> PholdOutcome {
    let mut m = Model::new(p);
    let mut q: EventQueue<u32> = EventQueue::with_capacity(p.initial_events() as usize);
    for lp in 0..p.lps {
        for _ in 0..p.events_per_lp {
            let (dt, dest) = m.next(lp);
            q.push(dt, dest);
        }
    }
    let (mut done, mut now, mut checksum) = (0u64, 0u64, 0u64);
    while done < p.events {
        let Some((t, lp)) = q.pop() else { break };
        now = t;
        checksum = mix(checksum, t, lp);
        let (dt, dest) = m.next(lp);
        q.push(t + dt, dest);
        done += 1;
    }
    PholdOutcome { events: done, end_ns: now, checksum }
}

/// The same model on a raw `std::collections::BinaryHeap`: the baseline.
pub fn run_heap_baseline(p: &Phold) -> PholdOutcome {
    let mut m = Model::new(p);
    let mut heap: BinaryHeap<Reverse<(u64, u64, u32)>> = BinaryHeap::with_capacity(p.initial_events() as usize);
    let mut seq = 0u64;
    for lp in 0..p.lps {
        for _ in 0..p.events_per_lp {
            let (dt, dest) = m.next(lp);
            heap.push(Reverse((dt, seq, dest)));
            seq += 1;
        }
    }
    let (mut done, mut now, mut checksum) = (0u64, 0u64, 0u64);
    while done < p.events {
        let Some(Reverse((t, _, lp))) = heap.pop() else { break };
        now = t;
        checksum = mix(checksum, t, lp);
        let (dt, dest) = m.next(lp);
        heap.push(Reverse((t + dt, seq, dest)));
        seq += 1;
        done += 1;
    }
    PholdOutcome { events: done, end_ns: now, checksum }
}
