//! The shipped 10,000-node scenario on short settings: it is deterministic, on one core
//! and split over two, and meets its assertions. (How fast and how big it runs is measured by `x0 run --json`, not here; see
//! docs/PERFORMANCE.md.)

mod common;

use std::time::Duration;

#[test]
fn a_10k_mesh_on_short_settings_is_deterministic_and_meets_its_assertions() {
    let mut scenario = common::load(&common::scenario_path("scale-10k"));
    // The mesh is about 130 hops across; it converges from a cold start in about 3 s.
    scenario.warmup = Duration::from_secs(4);
    scenario.duration = Duration::from_secs(7);
    // One random crash and the hub crash, each healed after a second, from the file's own
    // fault list so that the shipped definitions are what is tested.
    scenario.faults.retain(|f| f.name.starts_with("crash"));
    for (i, fault) in scenario.faults.iter_mut().enumerate() {
        fault.at = Duration::from_millis(4_500 + 1_000 * i as u64);
        fault.every = None;
        fault.count = None;
        fault.duration = Some(Duration::from_secs(1));
    }
    assert_eq!(scenario.faults.len(), 2, "scale-10k lost its crash faults");
    // The same seed on one core and split over two: the runs must agree event for event.
    let first = common::run_split(&scenario, &[scenario.seed], 2, 2);
    let second = common::run(&scenario, &[scenario.seed], 1);
    assert_eq!(first.report.seed_runs[0].partitions, 2, "the run was not split");
    assert_eq!(first.report.fingerprint, second.report.fingerprint, "one seed on one core and on two differ");
    assert_eq!(first.report.nodes, 10_000);
    common::assert_passes(&first);
    let summary = &first.report.summary;
    assert!(summary.faults == 2 && summary.detected == 2, "two crashes, each detected: {summary:#?}");
}
