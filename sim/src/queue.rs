//! The simulator's event queue: a radix heap over event times, FIFO among equal times.
//!
//! A discrete-event simulator only ever pops the earliest event and only ever schedules
//! at or after it, so its queue is *monotone*. A radix heap exploits that: events live in
//! buckets by the highest bit in which their time differs from the last time popped, a
//! push is O(1) (one XOR, one leading-zero count), and a pop only sorts the one bucket it
//! empties, moving each event down a few times over its life. That beats comparison heaps,
//! which pay O(log n) comparisons on every push and pop.
//!
//! Events at the same time run in the order of their keys: the bucket of the current time
//! is kept sorted by key, and events arriving in it from a higher bucket are sorted first.
//! [`EventQueue::push`] keys events by the order they were scheduled (FIFO among equal
//! times); the simulator keys them by (node that scheduled it, that node's own count), an
//! order that does not depend on how nodes are split between threads. Either way the order
//! in which events run is a function of the inputs alone.

use std::collections::VecDeque;

#[derive(Copy, Clone, Debug)]
struct Item<E> {
    t: u64,
    key: u64,
    ev: E,
}

/// A monotone min-priority queue of `Copy` events keyed by time in nanoseconds.
#[derive(Clone, Debug)]
pub struct EventQueue<E: Copy> {
    /// Events at exactly `last`, in key order.
    now: VecDeque<Item<E>>,
    /// Bucket i (1..=64) holds events whose time's highest bit differing from `last` is
    /// bit i - 1. Index 0 is unused (that is `now`).
    buckets: Vec<Vec<Item<E>>>,
    /// Bit i set when bucket i is non-empty: a refill finds the next bucket in one
    /// trailing-zero count.
    occupied: u128,
    /// The earliest time in each bucket (`u64::MAX` when empty), kept on push: finding the
    /// next time is then one load instead of a pass over the bucket, and a refill makes
    /// one pass instead of two.
    mins: [u64; 65],
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
            mins: [u64::MAX; 65],
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

    /// Schedules `ev` at time `t`, which must not be before the last event popped, after
    /// every event already scheduled at `t`.
    #[inline]
    pub fn push(&mut self, t: u64, ev: E) {
        self.push_keyed(t, self.next_seq, ev);
    }

    /// Schedules `ev` at time `t`, which must not be before the last event popped; among
    /// events at `t` it runs in the order of `key`. Keys must be unique among events at
    /// one time, or their order is unspecified.
    #[inline]
    pub fn push_keyed(&mut self, t: u64, key: u64, ev: E) {
        debug_assert!(t >= self.last, "event scheduled at {t} ns, before the event being handled ({} ns)", self.last);
        let item = Item { t, key, ev };
        self.next_seq += 1;
        self.len += 1;
        if t == self.last {
            // Usually the latest key (FIFO pushes always are): append without searching.
            if self.now.back().is_none_or(|b| b.key <= key) {
                self.now.push_back(item);
            } else {
                let at = self.now.partition_point(|it| it.key < key);
                self.now.insert(at, item);
            }
        } else {
            let b = bucket_of(t, self.last);
            self.buckets[b].push(item);
            self.occupied |= 1 << b;
            self.mins[b] = self.mins[b].min(t);
        }
    }

    /// Removes and returns the earliest event: smallest time, then smallest key.
    #[inline]
    pub fn pop(&mut self) -> Option<(u64, E)> {
        self.pop_before(u64::MAX)
    }

    /// Removes and returns the earliest event if it is before `limit`. Nothing moves when it
    /// is not, so events may still be pushed anywhere from the last one popped on: the
    /// simulator's shards stop at a window's end and then receive frames from other shards.
    #[inline]
    pub fn pop_before(&mut self, limit: u64) -> Option<(u64, E)> {
        self.pop_item_before(limit).map(|it| (it.t, it.ev))
    }

    /// As [`EventQueue::pop_before`], key included.
    #[inline]
    fn pop_item_before(&mut self, limit: u64) -> Option<Item<E>> {
        if self.now.is_empty() {
            let (i, min) = self.lowest()?;
            if min >= limit {
                return None;
            }
            self.refill(i, min);
        } else if self.last >= limit {
            return None;
        }
        self.len -= 1;
        Some(self.now.pop_front().expect("refill fills the current time"))
    }

    /// The time of the earliest event, without moving anything.
    pub fn peek_time(&self) -> Option<u64> {
        if self.now.is_empty() { self.lowest().map(|(_, min)| min) } else { Some(self.last) }
    }

    /// The lowest non-empty bucket and its earliest time.
    fn lowest(&self) -> Option<(usize, u64)> {
        if self.occupied == 0 {
            return None;
        }
        let i = self.occupied.trailing_zeros() as usize;
        debug_assert_eq!(Some(self.mins[i]), self.buckets[i].iter().map(|it| it.t).min(), "bucket {i}'s kept minimum");
        Some((i, self.mins[i]))
    }

    /// Empties bucket `i` around its earliest time `min`, which becomes `last`: events at
    /// that time go to `now` in key order, the rest to lower buckets.
    fn refill(&mut self, i: usize, min: u64) {
        self.occupied &= !(1 << i);
        self.mins[i] = u64::MAX;
        let mut items = std::mem::take(&mut self.buckets[i]);
        self.last = min;
        for &it in &items {
            if it.t == min {
                self.now.push_back(it);
            } else {
                // Every item lands in a bucket below `i`: they share bits above i - 1 with
                // the old `last` and with `min`.
                let b = bucket_of(it.t, min);
                self.buckets[b].push(it);
                self.occupied |= 1 << b;
                self.mins[b] = self.mins[b].min(it.t);
            }
        }
        if self.now.len() > 1 {
            self.now.make_contiguous().sort_unstable_by_key(|it| it.key);
        }
        items.clear();
        // Keep the emptied bucket's allocation for reuse.
        self.buckets[i] = items;
    }
}

/// An [`EventQueue`] that takes its next events out early, so that a caller handling one
/// event can see the few after it (to fetch their memory ahead of time) and still get every
/// event in exactly the order the queue alone would give: an event scheduled before the
/// last of those taken out is put among them.
#[derive(Clone, Debug)]
pub struct AheadQueue<E: Copy> {
    queue: EventQueue<E>,
    /// Events taken out of `queue`, in (time, key) order, each before the limit of the pop
    /// that took it out; every event still in `queue` comes after them.
    ahead: VecDeque<Item<E>>,
    depth: usize,
}

impl<E: Copy> AheadQueue<E> {
    /// A queue that shows up to `depth` events after the one last popped.
    pub fn new(depth: usize) -> Self {
        AheadQueue { queue: EventQueue::default(), ahead: VecDeque::with_capacity(depth + 1), depth }
    }

    pub fn len(&self) -> usize {
        self.queue.len() + self.ahead.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// As [`EventQueue::push_keyed`]: `t` must not be before the last event popped.
    #[inline]
    pub fn push_keyed(&mut self, t: u64, key: u64, ev: E) {
        match self.ahead.back() {
            // The queue has given out events up to the last one taken: anything earlier
            // goes among those.
            Some(back) if (t, key) < (back.t, back.key) => {
                let at = self.ahead.partition_point(|it| (it.t, it.key) < (t, key));
                self.ahead.insert(at, Item { t, key, ev });
            }
            _ => self.queue.push_keyed(t, key, ev),
        }
    }

    /// As [`EventQueue::pop_before`]; afterwards [`AheadQueue::ahead`] shows the events that
    /// follow, up to `depth` of them and at least those before `limit`.
    #[inline]
    pub fn pop_before(&mut self, limit: u64) -> Option<(u64, E)> {
        while self.ahead.len() <= self.depth
            && let Some(item) = self.queue.pop_item_before(limit)
        {
            self.ahead.push_back(item);
        }
        // Taken out for an earlier, later-ending window: they wait for the next one.
        if self.ahead.front()?.t >= limit {
            return None;
        }
        self.ahead.pop_front().map(|it| (it.t, it.ev))
    }

    /// The `i`-th event (from 0) after the one last popped, when it has been taken out: the
    /// order is final, as events scheduled later are put among these.
    #[inline]
    pub fn ahead(&self, i: usize) -> Option<E> {
        self.ahead.get(i).map(|it| it.ev)
    }

    /// The time of the earliest event, without moving anything.
    pub fn peek_time(&self) -> Option<u64> {
        self.ahead.front().map(|it| it.t).or_else(|| self.queue.peek_time())
    }
}
