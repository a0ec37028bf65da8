//! Cutting a topology into routing areas (see the core's `area` module): connected areas of
//! about the asked size, with nodes renumbered area by area so that each area is a
//! contiguous id range, as addresses are assigned by prefix.

use crate::topology::Topology;
use petgraph::graph::{NodeIndex, UnGraph};
use petgraph::visit::EdgeRef;
use std::collections::VecDeque;
use std::fmt::Write as _;
use x0tta6bl4::area::AreaPlan;

const UNREACHED: u32 = u32::MAX;

impl Topology {
    /// Splits the graph into `ceil(n / size)` areas and renumbers it.
    ///
    /// Area centres are chosen farthest-first by hop count (the first is node 0), and every
    /// node joins its nearest centre, ties to the earlier one. Each area is connected: a
    /// node's BFS parent is strictly nearer the same centre, so it belongs to that area too.
    /// Within an area nodes are ordered by distance from the centre, then by old id. Link
    /// order is kept, so links keep their indices.
    pub fn into_areas(self, size: u32) -> Topology {
        let n = self.graph.node_count();
        let k = n.div_ceil(size.max(1) as usize).max(1);
        let adjacency: Vec<Vec<u32>> = (0..n)
            .map(|i| self.graph.neighbors(NodeIndex::new(i)).map(|m| m.index() as u32).collect())
            .collect();
        let (mut dist, mut owner) = (vec![UNREACHED; n], vec![0u32; n]);
        let mut queue = VecDeque::new();
        for area in 0..k as u32 {
            // Farthest from every centre so far; an unreached component comes first.
            let centre = if area == 0 {
                0
            } else {
                (0..n).max_by_key(|&i| (dist[i], std::cmp::Reverse(i))).expect("at least one node")
            };
            if dist[centre] == 0 {
                break; // More areas than nodes can fill: every node is a centre already.
            }
            dist[centre] = 0;
            owner[centre] = area;
            queue.push_back(centre as u32);
            // Only nodes this centre is strictly nearer to are visited: the total work is
            // bounded by how much the areas shrink, not by `k * n`.
            while let Some(u) = queue.pop_front() {
                let d = dist[u as usize] + 1;
                for &v in &adjacency[u as usize] {
                    if d < dist[v as usize] {
                        dist[v as usize] = d;
                        owner[v as usize] = area;
                        queue.push_back(v);
                    }
                }
            }
        }
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_unstable_by_key(|&i| (owner[i as usize], dist[i as usize], i));
        let mut starts = Vec::new();
        let mut new_id = vec![0u32; n];
        for (new, &old) in order.iter().enumerate() {
            if starts.is_empty() || owner[old as usize] != owner[order[new - 1] as usize] {
                starts.push(new as u32);
            }
            new_id[old as usize] = new as u32;
        }
        let mut graph = UnGraph::with_capacity(n, self.graph.edge_count());
        for &old in &order {
            graph.add_node(self.graph[NodeIndex::new(old as usize)].clone());
        }
        for e in self.graph.edge_references() {
            let (a, b) = (new_id[e.source().index()], new_id[e.target().index()]);
            graph.add_edge(NodeIndex::new(a as usize), NodeIndex::new(b as usize), e.weight().clone());
        }
        let areas = starts.len();
        let mut description = self.description;
        let _ = write!(description, ", {areas} areas of about {} nodes", n / areas.max(1));
        let plan = AreaPlan::try_from(starts).expect("starts begin at 0, increase, and stay below 2^31");
        Topology { graph, description, areas: Some(plan) }
    }
}
