//! Routing by areas, the scale path: the plan's rules, how the simulator cuts a topology
//! into areas, and that area routing delivers, loop-free, through faults.
#![allow(clippy::disallowed_methods)] // Tests read scenario files.

mod common;

use proptest::prelude::*;
use std::collections::VecDeque;
use x0_sim::Topology;
use x0tta6bl4::area::{AREA_BIT, AreaPlan, AreaPlanError, area_id, is_area};
use x0tta6bl4::ids::NodeId;
use x0tta6bl4::scenario::Scenario;

#[test]
fn a_plan_maps_ids_to_areas_and_rejects_bad_plans() {
    let plan = AreaPlan::try_from(vec![0, 10, 25]).unwrap();
    let areas: Vec<u32> = [0, 9, 10, 24, 25, 1_000_000].iter().map(|&i| plan.area_of(NodeId(i))).collect();
    assert_eq!(areas, [0, 0, 1, 1, 2, 2]);
    assert!(is_area(area_id(2)) && !is_area(NodeId(AREA_BIT - 1)));
    assert_eq!(AreaPlan::try_from(vec![]), Err(AreaPlanError::Empty));
    assert_eq!(AreaPlan::try_from(vec![1, 5]), Err(AreaPlanError::FirstNotZero(1)));
    assert_eq!(AreaPlan::try_from(vec![0, 5, 5]), Err(AreaPlanError::NotIncreasing { prev: 5, next: 5 }));
    assert_eq!(AreaPlan::try_from(vec![0, AREA_BIT]), Err(AreaPlanError::TooLarge(AREA_BIT)));
}

proptest! {
    /// The plan's index finds the same area as counting the areas that start at or before
    /// an id: for areas of one id or of millions, few or many, and ids up to 2^31.
    #[test]
    fn the_area_index_agrees_with_counting_starts(
        gaps in prop::collection::vec(prop_oneof![1u32..4, 1u32..200, 1u32..5_000_000], 0..300),
        ids in prop::collection::vec(prop_oneof![0u32..100_000, 0u32..AREA_BIT], 1..200),
    ) {
        let mut starts = vec![0u32];
        for g in gaps {
            match starts.last().unwrap().checked_add(g).filter(|&s| s < AREA_BIT) {
                Some(s) => starts.push(s),
                None => break,
            }
        }
        let plan = AreaPlan::try_from(starts.clone()).unwrap();
        for id in ids.into_iter().chain(starts.iter().flat_map(|&s| [s, s.saturating_sub(1)])) {
            let counted = starts.iter().filter(|&&s| s <= id).count() as u32 - 1;
            prop_assert_eq!(plan.area_of(NodeId(id)), counted, "id {}", id);
        }
    }
}

#[test]
fn a_bad_plan_in_a_scenario_names_the_field() {
    let text = "name: x\nduration: 5s\nwarmup: 1s\ntopology: { ring: { nodes: 4 } }\nprotocol:\n  area_starts: [0, 3, 2]\n";
    let err = Scenario::parse(text, "x.yaml").unwrap_err().to_string();
    assert!(err.contains("area_starts") && err.contains("strictly increasing"), "{err}");
    let text = "name: x\nduration: 5s\nwarmup: 1s\ntopology: { ring: { nodes: 4 } }\nareas: { size: 1 }\n";
    let err = Scenario::parse(text, "x.yaml").unwrap_err().to_string();
    assert!(err.contains("areas.size") && err.contains("at least 2"), "{err}");
}

/// Members of one area, found by walking only links inside it from its first node.
fn reached_inside(adjacency: &[Vec<u32>], plan: &AreaPlan, area: u32) -> usize {
    let start = plan.starts()[area as usize];
    let mut seen = vec![false; adjacency.len()];
    let mut queue = VecDeque::from([start]);
    seen[start as usize] = true;
    let mut count = 0;
    while let Some(u) = queue.pop_front() {
        count += 1;
        for &v in &adjacency[u as usize] {
            if !seen[v as usize] && plan.area_of(NodeId(v)) == area {
                seen[v as usize] = true;
                queue.push_back(v);
            }
        }
    }
    count
}

#[test]
fn areas_are_connected_contiguous_and_keep_the_graph() {
    let mut rng = x0_sim::seed::stream(3, "topology", 0, 0);
    let flat = x0_sim::topology::random_geometric(20_000, (6.0 / (std::f64::consts::PI * 19_999.0)).sqrt(), &mut rng);
    let adjacency = |t: &Topology| {
        let mut adj = vec![Vec::new(); t.node_count() as usize];
        for (a, b) in t.edge_list() {
            adj[a.index()].push(b.0);
            adj[b.index()].push(a.0);
        }
        adj
    };
    let degrees = |t: &Topology| {
        let mut d: Vec<usize> = adjacency(t).iter().map(Vec::len).collect();
        d.sort_unstable();
        d
    };
    let (edges, flat_degrees) = (flat.edge_count(), degrees(&flat));
    let t = flat.into_areas(100);
    let plan = t.areas.clone().expect("a plan");
    assert_eq!(plan.areas(), 200);
    assert_eq!((t.edge_count(), degrees(&t)), (edges, flat_degrees), "renumbering changed the graph");
    let adj = adjacency(&t);
    let mut sizes = Vec::new();
    for area in 0..plan.areas() {
        let end = plan.starts().get(area as usize + 1).copied().unwrap_or(t.node_count());
        let size = (end - plan.starts()[area as usize]) as usize;
        assert_eq!(reached_inside(&adj, &plan, area), size, "area {area} is not connected inside");
        sizes.push(size);
    }
    sizes.sort_unstable();
    // Farthest-first centres keep areas within a small factor of the asked size.
    assert!(sizes[0] >= 20 && sizes[sizes.len() - 1] <= 300, "area sizes {sizes:?}");
}

#[test]
fn area_routing_delivers_and_reroutes_without_loops() {
    let text = "
name: areas-grid
seed: 5
duration: 20s
warmup: 4s
topology: { grid: { rows: 12, cols: 12 } }
areas: { size: 12 }
protocol: { area_halo_hops: 0 }
workload: { probe_pairs: 150, probe_interval: 50ms }
checks: { loop_interval: 10ms, loop_destinations: 64 }
faults:
  - { at: 6s, every: 3s, count: 4, duration: 2s, crash: { random: 1 } }
  - { at: 7s, every: 3s, count: 3, duration: 1s, link_down: { random: 2 } }
assertions:
  - loops == 0
  - false_positives == 0
  - unrecovered == 0
  - probe_success > 97%
";
    let scenario = Scenario::parse(text, "areas-grid.yaml").unwrap();
    let finished = common::run(&scenario, &[5, 6], 2);
    common::assert_passes(&finished);
    assert!(finished.report.summary.disrupted > 0, "no fault disrupted routing; the test proves nothing");
}

#[test]
fn the_scale_scenarios_load_with_their_area_plans() {
    for (name, nodes, size, areas) in [("scale-10k", 10_000, 100, 100), ("scale-100k", 100_000, 300, 334)] {
        let (scenario, topology) = x0_sim::load(&common::scenario_path(name)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(topology.node_count(), nodes, "{name}");
        assert_eq!(scenario.areas.map(|a| a.size), Some(size), "{name}");
        assert_eq!(topology.areas.as_ref().map(AreaPlan::areas), Some(areas), "{name}");
    }
}
