//! Shared helpers: where things are, and running a scenario file the way `x0 run` does.
#![allow(dead_code)] // Each test binary uses its own subset.

use std::path::PathBuf;
use x0_twin::run::{Finished, execute};
use x0tta6bl4::scenario::Scenario;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn scenario_path(name: &str) -> PathBuf {
    repo().join("scenarios").join(format!("{name}.yaml"))
}

pub fn data(name: &str) -> PathBuf {
    repo().join("tests").join("data").join(name)
}

/// Loads a scenario (with every check `x0 validate` makes) or fails the test with the
/// user-facing error.
pub fn load(path: &std::path::Path) -> Scenario {
    match x0_sim::load(path) {
        Ok((s, _)) => s,
        Err(e) => panic!("{} does not load:\n{e}", path.display()),
    }
}

/// Runs `seeds` of a scenario on `threads` workers, one core per seed, exactly as
/// `x0 run --partitions 1` does.
pub fn run(scenario: &Scenario, seeds: &[u64], threads: usize) -> Finished {
    run_split(scenario, seeds, threads, 1)
}

/// Runs `seeds` of a scenario on `threads` workers with each seed's simulation split
/// over `partitions` cores, exactly as `x0 run --partitions` does.
pub fn run_split(scenario: &Scenario, seeds: &[u64], threads: usize, partitions: usize) -> Finished {
    execute(scenario, seeds, threads, partitions, false).unwrap_or_else(|e| panic!("{} failed to run: {e:#}", scenario.name))
}

/// Fails with the assertion table if any assertion of the scenario failed.
pub fn assert_passes(f: &Finished) {
    let failed: Vec<String> = f
        .report
        .assertions
        .iter()
        .filter(|a| !a.passed)
        .map(|a| format!("{} (actual {:?})", a.assertion, a.actual))
        .collect();
    assert!(failed.is_empty(), "{}: failed assertions: {failed:?}\nsummary: {:#?}", f.report.scenario.name, f.report.summary);
}
