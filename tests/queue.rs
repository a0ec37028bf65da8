//! The event queue pops in (time, scheduling order) or (time, key), exactly like a
//! reference sort; it stops at a window's end without moving anything; and PHOLD does the
//! same work on it as on a std BinaryHeap. The simulator's queue that shows events ahead
//! pops in exactly the same order.

use proptest::prelude::*;
use x0_sim::phold::{self, Phold};
use x0_sim::queue::{AheadQueue, EventQueue};

proptest! {
    /// Interleaved pushes and pops, times never before the last pop (a simulator's
    /// pattern), many ties: the order is by time, then by push order.
    #[test]
    fn pops_in_time_then_fifo_order(ops in prop::collection::vec((any::<bool>(), 0u64..50, any::<bool>()), 1..2000)) {
        let mut q = EventQueue::default();
        let mut reference: Vec<(u64, u64)> = Vec::new(); // (time, seq)
        let (mut now, mut seq) = (0u64, 0u64);
        for (push, dt, big) in ops {
            if push || q.is_empty() {
                let t = now + if big { dt << 30 } else { dt };
                q.push(t, seq);
                reference.push((t, seq));
                seq += 1;
            } else {
                reference.sort_unstable();
                let want = reference.remove(0);
                let (t, got) = q.pop().expect("not empty");
                prop_assert_eq!((t, got), want);
                now = t;
            }
            prop_assert_eq!(q.len(), reference.len());
        }
        reference.sort_unstable();
        for want in reference {
            prop_assert_eq!(q.pop(), Some(want));
        }
        prop_assert_eq!(q.pop(), None);
    }
}

proptest! {
    /// The simulator's pattern with keys: pushes at or after the last pop, including at
    /// that very instant with keys smaller than events still waiting there, popped in
    /// windows that end anywhere; the order is by time, then key.
    #[test]
    fn pops_in_time_then_key_order_across_windows(
        ops in prop::collection::vec((0u8..3, 0u64..40, any::<u64>(), any::<bool>()), 1..2000),
    ) {
        let mut q = EventQueue::default();
        let mut reference: Vec<(u64, u64)> = Vec::new(); // (time, key)
        let mut now = 0u64;
        for (i, (op, dt, key, big)) in ops.into_iter().enumerate() {
            // Unique keys, as the simulator's are; the index keeps them so.
            let key = (key << 16) | i as u64;
            match op {
                0 | 1 if !q.is_empty() => {
                    // A window ending `dt` after the last pop: only earlier events come out.
                    let limit = now + dt;
                    reference.sort_unstable();
                    let got = q.pop_before(limit);
                    match reference.first() {
                        Some(&(t, k)) if t < limit => {
                            prop_assert_eq!(got, Some((t, k)));
                            reference.remove(0);
                            now = t;
                        }
                        _ => prop_assert_eq!(got, None),
                    }
                }
                _ => {
                    let t = now + if big { dt << 30 } else { dt };
                    q.push_keyed(t, key, key);
                    reference.push((t, key));
                }
            }
            prop_assert_eq!(q.len(), reference.len());
            reference.sort_unstable();
            prop_assert_eq!(q.peek_time(), reference.first().map(|&(t, _)| t));
        }
        for want in reference {
            prop_assert_eq!(q.pop(), Some(want));
        }
        prop_assert_eq!(q.pop(), None);
    }
}

proptest! {
    /// The queue that hands out events early gives exactly the plain queue's order, with
    /// pushes among the events it has already taken out and windows ending anywhere; and
    /// what it shows ahead is what comes next.
    #[test]
    fn looking_ahead_changes_no_order(
        depth in 1usize..24,
        ops in prop::collection::vec((0u8..3, 0u64..40, any::<u64>(), any::<bool>()), 1..2000),
    ) {
        let (mut ahead, mut plain) = (AheadQueue::new(depth), EventQueue::default());
        let mut now = 0u64;
        for (i, (op, dt, key, big)) in ops.into_iter().enumerate() {
            let key = (key << 16) | i as u64;
            match op {
                0 | 1 if !plain.is_empty() => {
                    let limit = now + if big { dt << 30 } else { dt };
                    let got = ahead.pop_before(limit);
                    prop_assert_eq!(got, plain.pop_before(limit));
                    if let Some((t, _)) = got {
                        now = t;
                        // The plain queue, popped further, gives what was shown ahead.
                        let mut copy = plain.clone();
                        for j in 0..depth {
                            match ahead.ahead(j) {
                                Some(shown) => prop_assert_eq!(Some(shown), copy.pop().map(|(_, e)| e)),
                                None => break,
                            }
                        }
                    }
                }
                _ => {
                    let t = now + if big { dt << 30 } else { dt };
                    ahead.push_keyed(t, key, key);
                    plain.push_keyed(t, key, key);
                }
            }
            prop_assert_eq!(ahead.len(), plain.len());
            prop_assert_eq!(ahead.peek_time(), plain.peek_time());
        }
        while let Some(want) = plain.pop() {
            prop_assert_eq!(ahead.pop_before(u64::MAX), Some(want));
        }
        prop_assert_eq!(ahead.pop_before(u64::MAX), None);
    }
}

#[test]
fn phold_engine_and_baseline_do_the_same_work() {
    for (lps, per_lp, remote) in [(1, 1, 0.0), (64, 4, 0.5), (1000, 2, 0.1)] {
        let p = Phold { lps, events_per_lp: per_lp, remote, lookahead: 0.1, events: 200_000, seed: 9 };
        let engine = phold::run_engine(&p);
        assert_eq!(engine.events, 200_000);
        assert_eq!(engine, phold::run_heap_baseline(&p), "{p:?}");
        assert_eq!(engine, phold::run_engine(&p), "deterministic");
    }
}
