//! Each always-on checker fails when fed a deliberately broken case, and passes a sound one.

use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;
use std::time::Duration;
use x0_sim::checkers::{find_loop, path_hops, shortest_hops, stretch};
use x0_sim::topology;
use x0tta6bl4::ids::NodeId;
use x0tta6bl4::metrics::GroundTruth;
use x0tta6bl4::time::Instant;

fn n(i: u32) -> NodeId {
    NodeId(i)
}

#[test]
fn loop_checker_finds_a_forwarding_cycle() {
    // Toward node 0: 1 -> 2 -> 3 -> 1 is a loop; 4 -> 0 is fine.
    let next = |x: NodeId| match x.0 {
        1 => Some(n(2)),
        2 => Some(n(3)),
        3 => Some(n(1)),
        4 => Some(n(0)),
        _ => None,
    };
    let cycle = find_loop(5, n(0), next).expect("the loop is found");
    let mut sorted = cycle.clone();
    sorted.sort();
    assert_eq!(sorted, vec![n(1), n(2), n(3)], "{cycle:?}");
}

#[test]
fn loop_checker_accepts_a_tree_and_dead_ends() {
    // A tree toward 0, plus a node whose next hop is dead (None): no loop.
    let next = |x: NodeId| match x.0 {
        1 | 2 => Some(n(0)),
        3 => Some(n(1)),
        4 => Some(n(3)),
        _ => None,
    };
    assert_eq!(find_loop(6, n(0), next), None);
    // A self-loop is a loop too.
    assert!(find_loop(3, n(0), |x| (x.0 == 2).then_some(n(2))).is_some());
}

#[test]
fn stretch_checker_sees_a_detour() {
    let t = topology::grid(3, 3);
    let gt = GroundTruth::new(9, &t.edge_list());
    // 0 -> 2 is 2 hops; route it the long way round: 0 -> 3 -> 6 -> 7 -> 8 -> 5 -> 2.
    let detour = |x: NodeId| match x.0 {
        0 => Some(n(3)),
        3 => Some(n(6)),
        6 => Some(n(7)),
        7 => Some(n(8)),
        8 => Some(n(5)),
        5 => Some(n(2)),
        _ => None,
    };
    assert_eq!(shortest_hops(&t.graph, &gt, n(0), n(2)), Some(2));
    assert_eq!(path_hops(9, n(0), n(2), detour), Some(6));
    assert_eq!(stretch(&t.graph, &gt, n(0), n(2), detour), Some(3.0));
    let direct = |x: NodeId| match x.0 {
        0 => Some(n(1)),
        1 => Some(n(2)),
        _ => None,
    };
    assert_eq!(stretch(&t.graph, &gt, n(0), n(2), direct), Some(1.0));
    // A forwarding loop never arrives: no stretch sample, and the path walk stops.
    assert_eq!(path_hops(9, n(0), n(2), |x| Some(if x.0 == 0 { n(1) } else { n(0) })), None);
}

#[test]
fn shortest_paths_follow_the_current_graph() {
    let t = topology::grid(3, 3);
    let mut gt = GroundTruth::new(9, &t.edge_list());
    gt.set_node(n(1), true, Instant::ZERO);
    assert_eq!(shortest_hops(&t.graph, &gt, n(0), n(2)), Some(4), "around the dead middle of the top row");
    let e = gt.edge_between(n(0), n(3)).unwrap();
    gt.set_link(e, true, Instant::ZERO);
    assert_eq!(shortest_hops(&t.graph, &gt, n(0), n(2)), None, "node 0 is cut off");
}

/// Hops from `src` to `dst` by the plainest search there is: breadth first from `src`.
fn hops_from_one_end(nodes: u32, edges: &[(NodeId, NodeId)], gt: &GroundTruth, src: NodeId, dst: NodeId) -> Option<u32> {
    let mut hops = vec![None; nodes as usize];
    hops[src.index()] = Some(0);
    let mut queue = VecDeque::from([src]);
    while let Some(a) = queue.pop_front() {
        let here = hops[a.index()].expect("queued nodes are reached");
        for (e, &(x, y)) in edges.iter().enumerate() {
            let b = if x == a { y } else if y == a { x } else { continue };
            if gt.link_up(e as u32) && gt.node_alive(a) && gt.node_alive(b) && hops[b.index()].is_none() {
                hops[b.index()] = Some(here + 1);
                queue.push_back(b);
            }
        }
    }
    hops[dst.index()]
}

proptest! {
    /// The two-ended search finds what a one-ended one does, on random meshes with dead
    /// nodes and cut links.
    #[test]
    fn shortest_hops_agree_with_a_plain_search(
        seed in any::<u64>(),
        nodes in 2u32..120,
        dead in prop::collection::vec(0u32..120, 0..12),
        cut in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
        pairs in prop::collection::vec((0u32..120, 0u32..120), 1..12),
    ) {
        let t = topology::random_geometric(nodes, 0.2, &mut ChaCha8Rng::seed_from_u64(seed));
        let edges = t.edge_list();
        let mut gt = GroundTruth::new(nodes, &edges);
        for d in dead.into_iter().filter(|&d| d < nodes) {
            gt.set_node(n(d), true, Instant::ZERO);
        }
        if !edges.is_empty() {
            for c in cut {
                gt.set_link(c.index(edges.len()) as u32, true, Instant::ZERO);
            }
        }
        for (a, b) in pairs {
            let (a, b) = (n(a % nodes), n(b % nodes));
            prop_assert_eq!(shortest_hops(&t.graph, &gt, a, b), hops_from_one_end(nodes, &edges, &gt, a, b), "{:?} to {:?}", a, b);
        }
    }
}

#[test]
fn false_positive_checker_flags_a_live_neighbour_declared_down() {
    let t = topology::line(3);
    let mut gt = GroundTruth::new(3, &t.edge_list());
    let grace = Duration::from_secs(1);
    let late = Instant::from_nanos(10_000_000_000);
    // Everything alive and linked for ages: declaring 1 down is a false positive.
    assert!(gt.is_false_positive(n(0), n(1), late, grace));
    // Node 1 really crashed: not a false positive.
    gt.set_node(n(1), true, late);
    assert!(!gt.is_false_positive(n(0), n(1), late + grace * 2, grace));
    // It came back 200 ms ago: a late true detection, inside the grace period.
    let back = late + grace * 3;
    gt.set_node(n(1), false, back);
    assert!(!gt.is_false_positive(n(0), n(1), back + Duration::from_millis(200), grace));
    assert!(gt.is_false_positive(n(0), n(1), back + grace * 2, grace));
    // The link is down: not a false positive. Not neighbours at all: not ours to judge.
    let e = gt.edge_between(n(1), n(2)).unwrap();
    gt.set_link(e, true, back);
    assert!(!gt.is_false_positive(n(1), n(2), back + grace * 2, grace));
    assert!(!gt.is_false_positive(n(0), n(2), back + grace * 2, grace));
}

#[test]
fn ground_truth_counts_overlapping_faults() {
    let t = topology::line(3);
    let mut gt = GroundTruth::new(3, &t.edge_list());
    let e = gt.edge_between(n(0), n(1)).unwrap();
    gt.set_link(e, true, Instant::ZERO);
    gt.set_link(e, true, Instant::ZERO);
    gt.set_link(e, false, Instant::ZERO);
    assert!(!gt.path_exists(n(0), n(2)), "one of two faults healed: still down");
    gt.set_link(e, false, Instant::ZERO);
    assert!(gt.path_exists(n(0), n(2)));
}
