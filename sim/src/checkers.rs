//! Always-on correctness checkers. Each is a pure function of a snapshot, so tests can feed
//! it a deliberately broken case and watch it fail. (The false-positive checker is
//! [`x0tta6bl4::metrics::GroundTruth::is_false_positive`], shared with live mode.)

use petgraph::graph::{NodeIndex, UnGraph};
use petgraph::visit::EdgeRef;
use x0tta6bl4::ids::NodeId;
use x0tta6bl4::metrics::GroundTruth;

/// Follows next hops toward `dest` from every node and returns one forwarding cycle, if
/// any. `next_hop(n)` is `None` where forwarding stops (no route, node down). Linear in
/// the number of nodes: each node is walked once.
pub fn find_loop(nodes: u32, dest: NodeId, next_hop: impl Fn(NodeId) -> Option<NodeId>) -> Option<Vec<NodeId>> {
    const UNSEEN: u32 = u32::MAX;
    const DONE: u32 = u32::MAX - 1;
    // Walk number that first reached each node; a walk meeting its own number closed a cycle.
    let mut mark = vec![UNSEEN; nodes as usize];
    let mut path = Vec::new();
    for start in 0..nodes {
        if mark[start as usize] != UNSEEN {
            continue;
        }
        path.clear();
        let mut cur = NodeId(start);
        loop {
            if cur == dest || cur.index() >= mark.len() {
                break;
            }
            match mark[cur.index()] {
                m if m == start => {
                    let from = path.iter().position(|&n| n == cur).expect("a marked node is on the path");
                    return Some(path[from..].to_vec());
                }
                UNSEEN => {
                    mark[cur.index()] = start;
                    path.push(cur);
                    match next_hop(cur) {
                        Some(next) => cur = next,
                        None => break,
                    }
                }
                // Reached a node an earlier walk finished: no cycle through here.
                _ => break,
            }
        }
        for &n in &path {
            mark[n.index()] = DONE;
        }
    }
    None
}

/// Hop count of the protocol's path from `src` to `dst` (following `next_hop`), or `None`
/// if forwarding does not arrive within `nodes` hops.
pub fn path_hops(nodes: u32, src: NodeId, dst: NodeId, next_hop: impl Fn(NodeId) -> Option<NodeId>) -> Option<u32> {
    let mut cur = src;
    for hops in 0..nodes {
        if cur == dst {
            return Some(hops);
        }
        cur = next_hop(cur)?;
    }
    None
}

/// Shortest hop count between `src` and `dst` over live nodes and up links, by breadth-first
/// search from both ends, a whole level of the smaller frontier at a time. The stretch
/// checker asks this of random pairs of a mesh of thousands, 130 hops across: two balls
/// of half the radius hold a fraction of the nodes one whole ball does. (petgraph's
/// Dijkstra, with a heap and a hash map of every node reached, took about 4% of the quiet
/// seconds of scale-10k; this takes about 1%.)
pub fn shortest_hops<N, E>(graph: &UnGraph<N, E>, gt: &GroundTruth, src: NodeId, dst: NodeId) -> Option<u32> {
    const UNSEEN: u32 = u32::MAX;
    if src == dst {
        return Some(0);
    }
    let n = graph.node_count();
    // Hops from `src` (side 0) and from `dst` (side 1).
    let mut hops = [vec![UNSEEN; n], vec![UNSEEN; n]];
    hops[0][src.index()] = 0;
    hops[1][dst.index()] = 0;
    let mut frontiers = [vec![src.index()], vec![dst.index()]];
    let mut next = Vec::new();
    while !frontiers[0].is_empty() && !frontiers[1].is_empty() {
        let side = usize::from(frontiers[1].len() < frontiers[0].len());
        for &a in &frontiers[side] {
            for e in graph.edges(NodeIndex::new(a)) {
                let b = if e.source().index() == a { e.target().index() } else { e.source().index() };
                if !(gt.link_up(e.id().index() as u32) && gt.node_alive(NodeId(a as u32)) && gt.node_alive(NodeId(b as u32))) {
                    continue;
                }
                let from_other = hops[1 - side][b];
                if from_other != UNSEEN {
                    // No node was reached from both ends before, so `b` is on the other
                    // side's last level (one nearer would have reached `a`): every crossing
                    // of this level is as long as this one, and none was shorter.
                    return Some(hops[side][a] + 1 + from_other);
                }
                if hops[side][b] == UNSEEN {
                    hops[side][b] = hops[side][a] + 1;
                    next.push(b);
                }
            }
        }
        std::mem::swap(&mut frontiers[side], &mut next);
        next.clear();
    }
    None
}

/// Route stretch of one pair: protocol hops over shortest hops. `None` if either is missing
/// or the pair is the same node.
pub fn stretch<N, E>(
    graph: &UnGraph<N, E>,
    gt: &GroundTruth,
    src: NodeId,
    dst: NodeId,
    next_hop: impl Fn(NodeId) -> Option<NodeId>,
) -> Option<f64> {
    let actual = path_hops(graph.node_count() as u32, src, dst, next_hop)?;
    let best = shortest_hops(graph, gt, src, dst)?;
    (best > 0).then(|| f64::from(actual) / f64::from(best))
}
