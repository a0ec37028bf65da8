//! Every shipped scenario runs and meets its own assertions, on short settings: its first
//! seed only. (`x0 run` runs all its seeds; the assertions must hold there too.)

mod common;

use x0tta6bl4::scenario::FaultKind;

fn check(name: &str) {
    let scenario = common::load(&common::scenario_path(name));
    let finished = common::run(&scenario, &[scenario.seed], 1);
    common::assert_passes(&finished);
    let s = &finished.report.summary;
    // A blackhole's forged routes make loops until it is isolated: that is the attack.
    let forged = scenario.faults.iter().any(|f| matches!(f.kind, FaultKind::Blackhole(_)));
    assert!(forged || s.loops == 0, "{name}: routing loops are never acceptable from honest nodes");
    assert!(s.faults > 0, "{name}: a chaos scenario that injected nothing");
    for seed in &finished.report.seed_runs {
        assert_eq!(seed.timer_spins, 0, "{name}: a node asked to be woken for an instant already handled");
    }
}

macro_rules! scenario_tests {
    ($($test:ident => $file:literal),* $(,)?) => {
        $(#[test] fn $test() { check($file) })*

        /// Every YAML file in scenarios/ has a test above: a new scenario cannot ship untested.
        #[test]
        fn every_scenario_file_is_tested() {
            // Too slow to run here in full (docs/PERFORMANCE.md): tests/areas.rs loads both,
            // tests/scale.rs runs scale-10k on short settings. (live-crash, live-faults and
            // live-byzantine also run on a namespace mesh in twin/tests/live.rs.)
            let elsewhere = ["scale-10k", "scale-100k"];
            let tested: Vec<&str> = [$($file),*].into_iter().chain(elsewhere).collect();
            let dir = common::repo().join("scenarios");
            for entry in std::fs::read_dir(&dir).expect("scenarios/ exists") {
                let path = entry.expect("readable").path();
                if path.extension().is_some_and(|e| e == "yaml") {
                    let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
                    assert!(tested.contains(&stem.as_str()), "scenarios/{stem}.yaml has no test in tests/scenarios.rs");
                }
            }
        }
    };
}

scenario_tests! {
    node_crash => "node-crash",
    secure_node_crash => "secure-node-crash",
    link_flap => "link-flap",
    partition_heal => "partition-heal",
    cascading_failures => "cascading-failures",
    gray_degrade => "gray-degrade",
    process_faults => "process-faults",
    mesh_1000 => "mesh-1000",
    zoo_cogentco => "zoo-cogentco",
    freifunk_bielefeld => "freifunk-bielefeld",
    live_crash => "live-crash",
    live_faults => "live-faults",
    byzantine_blackhole => "byzantine-blackhole",
    byzantine_grey_hole => "byzantine-grey-hole",
    byzantine_replay => "byzantine-replay",
    byzantine_impersonation => "byzantine-impersonation",
    byzantine_malformed_flood => "byzantine-malformed-flood",
    live_byzantine => "live-byzantine",
}

/// A crashed node's host is up, as under `x0 live` (SIGKILL): unicast frames to it come back
/// as port-unreachable reports, and the neighbours that forward probes through it know
/// within a round trip of the first one, well inside a hello interval, which silence alone
/// can never do. A frozen process (SIGSTOP) keeps its socket: nothing comes back, and it
/// is found by silence as before.
#[test]
fn crashed_processes_are_reported_by_their_hosts_and_frozen_ones_are_not() {
    let detect_ms = |name: &str, kind: &str| {
        let scenario = common::load(&common::scenario_path(name));
        let f = common::run(&scenario, &[scenario.seed], 1);
        let bounced = f.runs[0].0.engine.frames_bounced;
        let ms: Vec<u64> = f
            .rows
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| (r.t_detect_ns.expect("every fault detected") - r.t_inject_ns) / 1_000_000)
            .collect();
        assert!(!ms.is_empty(), "{name} has no {kind} fault");
        (ms, bounced)
    };
    let (crashes, bounced) = detect_ms("node-crash", "crash");
    assert!(bounced > 0, "no unicast frame reached a crashed node");
    assert!(crashes.iter().all(|&ms| ms < 100), "crashes detected after {crashes:?} ms");
    let (pauses, _) = detect_ms("process-faults", "pause");
    assert!(pauses.iter().all(|&ms| ms >= 100), "a pause detected after {pauses:?} ms, sooner than silence can tell");
}
