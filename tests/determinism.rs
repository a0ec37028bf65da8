//! Architecture Invariant: same seed + same commit ⇒ same event-trace fingerprint, whatever
//! the thread count.

mod common;

#[test]
fn same_seed_same_fingerprint_any_thread_count() {
    same_fingerprint_any_thread_count("node-crash");
}

/// Keys, handshakes and sealed frames come from the seed too (ARCHITECTURE.md,
/// "Reproducible crypto"), so link security keeps the invariant.
#[test]
fn link_security_keeps_the_fingerprint_reproducible() {
    same_fingerprint_any_thread_count("secure-node-crash");
}

fn same_fingerprint_any_thread_count(name: &str) {
    let scenario = common::load(&common::scenario_path(name));
    let seeds = [1, 2, 3];
    let one = common::run(&scenario, &seeds, 1);
    let two = common::run(&scenario, &seeds, 2);
    let again = common::run(&scenario, &seeds, 2);
    let prints = |f: &x0_twin::run::Finished| f.report.seed_runs.iter().map(|s| s.fingerprint.clone()).collect::<Vec<_>>();
    assert_eq!(prints(&one), prints(&two), "per-seed fingerprints differ between 1 and 2 threads");
    assert_eq!(one.report.fingerprint, two.report.fingerprint);
    assert_eq!(two.report.fingerprint, again.report.fingerprint, "two identical runs differ");
    assert_eq!(one.report.summary, two.report.summary, "aggregates differ between 1 and 2 threads");
    // And the fingerprint does see the seed: different seeds, different traces.
    let p = prints(&one);
    assert!(p[0] != p[1] && p[1] != p[2], "different seeds gave the same fingerprint: {p:?}");
}

/// One seed's simulation split over cores (conservative parallel simulation) gives the
/// same trace as on one core, through every kind of fault: node and link faults, frozen
/// and restarted processes, clock steps, impairments, and the Byzantine kinds that replay,
/// flood and impersonate. Three partitions on two threads also makes the split uneven.
#[test]
fn one_seed_split_over_cores_keeps_its_fingerprint() {
    for name in [
        "node-crash",
        "process-faults",
        "link-flap",
        "partition-heal",
        "gray-degrade",
        "byzantine-replay",
        "byzantine-malformed-flood",
        "byzantine-impersonation",
        "byzantine-grey-hole",
        "secure-node-crash",
    ] {
        let scenario = common::load(&common::scenario_path(name));
        let seed = [scenario.seed];
        let one = common::run_split(&scenario, &seed, 1, 1);
        let split = common::run_split(&scenario, &seed, 2, 3);
        assert_eq!(split.report.seed_runs[0].partitions, 3, "{name}: the run was not split");
        assert_eq!(one.report.fingerprint, split.report.fingerprint, "{name}: one core and three partitions differ");
        assert_eq!(one.report.summary, split.report.summary, "{name}: aggregates differ");
        assert_eq!(one.report.events, split.report.events, "{name}: event counts differ");
    }
}

#[test]
fn the_fingerprint_sees_a_parameter_change() {
    let mut scenario = common::load(&common::scenario_path("link-flap"));
    let base = common::run(&scenario, &[7], 1).report.fingerprint;
    scenario.protocol.hello_interval = std::time::Duration::from_millis(101);
    let changed = common::run(&scenario, &[7], 1).report.fingerprint;
    assert_ne!(base, changed, "a different hello interval left the trace unchanged");
}
