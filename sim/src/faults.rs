//! Choosing what a fault hits. Every random choice draws from the fault's own stream, so
//! the same seed picks the same victims however the rest of the run went.

use crate::topology::Topology;
use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;
use x0tta6bl4::ids::NodeId;
use x0tta6bl4::metrics::GroundTruth;
use x0tta6bl4::scenario::{LinkTarget, NodeTarget, Partition, SplitSide};
use x0tta6bl4::units::Percent;

/// `k` distinct items of `pool`, chosen uniformly, in pool order.
fn sample<T: Copy + Ord>(mut pool: Vec<T>, k: usize, rng: &mut ChaCha8Rng) -> Vec<T> {
    let k = k.min(pool.len());
    for i in 0..k {
        let j = rng.random_range(i..pool.len());
        pool.swap(i, j);
    }
    pool.truncate(k);
    pool.sort_unstable();
    pool
}

fn share(p: Percent, total: usize) -> usize {
    ((p.ratio() * total as f64).round() as usize).max(1)
}

/// The nodes a target names, among those alive now.
pub fn pick_nodes(t: &NodeTarget, topo: &Topology, gt: &GroundTruth, rng: &mut ChaCha8Rng) -> Vec<NodeId> {
    let alive: Vec<NodeId> = (0..topo.node_count()).map(NodeId).filter(|&n| gt.node_alive(n)).collect();
    let degree = |n: NodeId| topo.graph.edges(NodeIndex::new(n.index())).count();
    let mut nodes = match t {
        NodeTarget::Nodes(ids) => ids.iter().map(|s| NodeId(s.value)).collect(),
        NodeTarget::Random(k) => sample(alive, *k as usize, rng),
        NodeTarget::Percent(p) => {
            let k = share(*p, topo.node_count() as usize);
            sample(alive, k, rng)
        }
        NodeTarget::HighestDegree(k) => {
            let mut by_degree = alive;
            by_degree.sort_by_key(|&n| (std::cmp::Reverse(degree(n)), n));
            by_degree.truncate(*k as usize);
            by_degree
        }
        NodeTarget::ArticulationPoints(k) => {
            let points: Vec<NodeId> = petgraph::algo::articulation_points::articulation_points(&topo.graph)
                .into_iter()
                .map(|n| NodeId(n.index() as u32))
                .filter(|&n| gt.node_alive(n))
                .collect();
            let mut points = points;
            points.sort_unstable();
            sample(points, *k as usize, rng)
        }
    };
    nodes.sort_unstable();
    nodes.dedup();
    nodes
}

/// The links (edge indices) a target names, among those up now. Explicit pairs were checked
/// to be adjacent when the simulation was built.
pub fn pick_links(t: &LinkTarget, topo: &Topology, gt: &GroundTruth, rng: &mut ChaCha8Rng) -> Vec<u32> {
    let up: Vec<u32> = (0..topo.edge_count() as u32).filter(|&e| gt.link_up(e)).collect();
    let mut links = match t {
        LinkTarget::Links(pairs) => pairs
            .iter()
            .filter_map(|[a, b]| gt.edge_between(NodeId(a.value), NodeId(b.value)))
            .collect(),
        LinkTarget::Random(k) => sample(up, *k as usize, rng),
        LinkTarget::Percent(p) => {
            let k = share(*p, topo.edge_count());
            sample(up, k, rng)
        }
        LinkTarget::Bridges(k) => {
            let mut bridges: Vec<u32> = petgraph::algo::bridges(&topo.graph)
                .map(|e| e.id().index() as u32)
                .filter(|&e| gt.link_up(e))
                .collect();
            bridges.sort_unstable();
            sample(bridges, *k as usize, rng)
        }
    };
    links.sort_unstable();
    links.dedup();
    links
}

/// Group number of every node under a partition.
pub fn partition_groups(p: &Partition, topo: &Topology, rng: &mut ChaCha8Rng) -> Vec<u32> {
    let n = topo.node_count() as usize;
    match p {
        Partition::Groups(groups) => {
            // Nodes named in no group form one more group together.
            let mut g = vec![groups.len() as u32; n];
            for (i, group) in groups.iter().enumerate() {
                for id in group {
                    g[id.value as usize] = i as u32;
                }
            }
            g
        }
        Partition::Split { side: SplitSide::Random, fraction } => {
            let mut g: Vec<u32> = (0..n).map(|_| u32::from(rng.random_range(0..1_000_000) < fraction.ppm())).collect();
            // Both sides must be non-empty for this to be a partition at all.
            if g.iter().all(|&x| x == g[0]) {
                let i = rng.random_range(0..n);
                g[i] ^= 1;
            }
            g
        }
        Partition::Split { fraction, .. } => {
            // A connected region grown breadth-first from a random node: how real meshes split
            // (one neighbourhood loses its uplinks), not a scatter of isolated nodes.
            let want = share(*fraction, n).min(n - 1);
            let mut g = vec![0u32; n];
            let start = rng.random_range(0..n);
            let mut queue = VecDeque::from([start]);
            g[start] = 1;
            let mut taken = 1;
            while let Some(u) = queue.pop_front() {
                for v in topo.graph.neighbors(NodeIndex::new(u)) {
                    if taken < want && g[v.index()] == 0 {
                        g[v.index()] = 1;
                        taken += 1;
                        queue.push_back(v.index());
                    }
                }
            }
            g
        }
    }
}

/// Edges whose ends fall in different groups.
pub fn cut_edges(groups: &[u32], topo: &Topology) -> Vec<u32> {
    topo.graph
        .edge_references()
        .filter(|e| groups[e.source().index()] != groups[e.target().index()])
        .map(|e| e.id().index() as u32)
        .collect()
}
