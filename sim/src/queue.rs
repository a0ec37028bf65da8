//! The simulator's event queue: a radix heap over event times, FIFO among equal times.
//!
//! A discrete-event simulator only ever pops the earliest event and only ever schedules
//! at or after it, so its queue is *monotone*. A radix heap exploits that: events live in
//! buckets by the highest bit in which their time differs from the last time popped, a
//! push is O(1) (one XOR, one leading-zero count), and a pop only sorts the one bucket it
//! empties, moving each event down a few times over its life. That beats comparison heaps,
//! which pay O(log n) comparisons on every push and pop.
//!
//! Events at the same time run in the order they were scheduled: the bucket of the current
//! time is a FIFO, and events arriving in it from a higher bucket are first sorted by
//! their sequence number. So the order in which events run is a function of the inputs
//! alone.

use std::collections::VecDeque;

#[derive(Copy, Clone, Debug)]
struct Item<E> {
    t: u64,
    seq: u64,
    ev: E,
}

/// A monotone min-priority queue of `Copy` events keyed by time in nanoseconds.
#[derive(Clone, Debug)]
pub struct EventQueue<E: Copy> {
    /// Events at exactly `last`, in scheduling order.
    now: VecDeque<Item<E>>,
    /// Bucket i (1..=64) holds events whose time's highest bit differing from `last` is
    /// bit i - 1. Index 0 is unused (that is `now`).
    buckets: Vec<Vec<Item<E>>>,
    /// Bit i set when bucket i is non-empty: a refill finds the next bucket in one
    /// trailing-zero count.
    occupied: u128,
    /// The time of the last event popped: nothing earlier may be pushed.
    last: u64,
    len: usize,
    next_seq: u64,
}

impl<E: Copy> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue {
            now: VecDeque::new(),
            buckets: (0..=64).map(|_| Vec::new()).collect(),
            occupied: 0,
            last: 0,
            len: 0,
            next_seq: 0,
        }
    }
}

#[inline]
fn bucket_of(t: u64, last: u64) -> usize {
    64 - (t ^ last).leading_zeros() as usize
}

impl<E: Copy> EventQueue<E> {
    pub fn with_capacity(n: usize) -> Self {
        let mut q = Self::default();
        for b in &mut q.buckets[1..] {
            b.reserve(n / 8);
        }
        q
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Events pushed so far.
    pub fn pushed(&self) -> u64 {
        self.next_seq
    }

    /// Schedules `ev` at time `t`, which must not be before the last event popped.
    #[inline]
    pub fn push(&mut self, t: u64, ev: E) {
        debug_assert!(t >= self.last, "event scheduled at {t} ns, before the event being handled ({} ns)", self.last);
        let item = Item { t, seq: self.next_seq, ev };
        self.next_seq += 1;
        self.len += 1;
        if t == self.last {
            self.now.push_back(item);
        } else {
            let b = bucket_of(t, self.last);
            self.buckets[b].push(item);
            self.occupied |= 1 << b;
        }
    }

    /// Removes and returns the earliest event: smallest time, then first scheduled.
    #[inline]
    pub fn pop(&mut self) -> Option<(u64, E)> {
        if self.now.is_empty() {
            if self.occupied == 0 {
                return None;
            }
            self.refill();
        }
        self.len -= 1;
        let item = self.now.pop_front().expect("refill fills the current time");
        Some((item.t, item.ev))
    }

    /// Empties the lowest non-empty bucket around its earliest time, which becomes `last`:
    /// events at that time go to `now` in scheduling order, the rest to lower buckets.
    fn refill(&mut self) {
        let i = self.occupied.trailing_zeros() as usize;
        self.occupied &= !(1 << i);
        let mut items = std::mem::take(&mut self.buckets[i]);
        let min = items.iter().map(|it| it.t).min().expect("an occupied bucket is not empty");
        self.last = min;
        for &it in &items {
            if it.t == min {
                self.now.push_back(it);
            } else {
                let b = bucket_of(it.t, min);
                self.buckets[b].push(it);
                self.occupied |= 1 << b;
            }
        }
        if self.now.len() > 1 {
            self.now.make_contiguous().sort_unstable_by_key(|it| it.seq);
        }
        items.clear();
        // Keep the emptied bucket's allocation for reuse.
        self.buckets[i] = items;
    }
}
