//! Always-on correctness checkers. Each is a pure function of a snapshot, so tests can feed
//! it a deliberately broken case and watch it fail. (The false-positive checker is
//! [`x0tta6bl4::metrics::GroundTruth::is_false_positive`], shared with live mode.)

use petgraph::algo::dijkstra;
use petgraph::graph::{NodeIndex, UnGraph};
use petgraph::visit::{EdgeFiltered, EdgeRef};
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

/// Shortest hop count between `src` and `dst` over live nodes and up links: petgraph
/// Dijkstra on the current ground-truth graph.
pub fn shortest_hops<N, E>(graph: &UnGraph<N, E>, gt: &GroundTruth, src: NodeId, dst: NodeId) -> Option<u32> {
    let live = EdgeFiltered::from_fn(graph, |e| {
        gt.link_up(e.id().index() as u32)
            && gt.node_alive(NodeId(e.source().index() as u32))
            && gt.node_alive(NodeId(e.target().index() as u32))
    });
    let (s, d) = (NodeIndex::new(src.index()), NodeIndex::new(dst.index()));
    dijkstra(&live, s, Some(d), |_| 1u32).get(&d).copied()
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
