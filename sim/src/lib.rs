//! The deterministic discrete-event simulator: it turns a scenario and a seed into
//! timestamped event records, by driving thousands of the core's `Node`s over a modelled
//! network with faults injected. Same scenario, same seed, same commit: same fingerprint.

pub mod areas;
pub mod checkers;
pub mod engine;
pub mod faults;
mod identity;
pub mod net;
pub mod phold;
pub mod queue;
pub mod seed;
pub mod topology;

pub use engine::{EngineStats, LoopSample, RunResult, Simulation, Trace, probe_workload};
pub use topology::{Topology, TopologyError};

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use thiserror::Error;
use x0tta6bl4::scenario::{Scenario, ScenarioError, TopologySpec, error_at};

#[derive(Debug, Error)]
pub enum LoadError {
    #[error("{path}: cannot read the scenario: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error(transparent)]
    Topology(#[from] TopologyError),
}

/// Reads and parses a scenario file; errors name the file and position.
pub fn read_scenario(path: &Path) -> Result<Scenario, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read { path: path.to_path_buf(), source })?;
    Ok(Scenario::parse(&text, &path.display().to_string())?)
}

/// The directory file paths in a scenario are relative to.
pub fn scenario_dir(scenario: &Scenario) -> PathBuf {
    Path::new(&scenario.origin.name).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The topology of one seed's run. File problems are reported at the `path:` line.
pub fn build_topology(scenario: &Scenario, seed: u64) -> Result<Topology, LoadError> {
    match Topology::from_spec(&scenario.topology, &scenario_dir(scenario), seed) {
        Ok(t) => Ok(match scenario.areas {
            Some(areas) => t.into_areas(areas.size),
            None => t,
        }),
        Err(e) => match &scenario.topology {
            TopologySpec::File { path, .. } => {
                Err(LoadError::Scenario(error_at(&scenario.origin, path.referenced, format!("topology.file.path: {e}"))))
            }
            _ => Err(LoadError::Topology(e)),
        },
    }
}

/// Everything `x0 validate` checks: the file parses, the topology loads, node ids exist,
/// explicit links are links. Returns the scenario and its first seed's topology.
pub fn load(path: &Path) -> Result<(Scenario, Topology), LoadError> {
    let scenario = read_scenario(path)?;
    let topology = build_topology(&scenario, scenario.seed)?;
    Simulation::new(&scenario, &topology, scenario.seed, 1).map_err(|engine::SimError::Scenario(e)| e)?;
    Ok((scenario, topology))
}

/// Runs one seed to completion on up to `partitions` cores (results do not depend on it).
/// `progress` receives the simulated time in nanoseconds.
pub fn run_seed(scenario: &Scenario, seed: u64, partitions: usize, progress: Option<&AtomicU64>) -> Result<RunResult, LoadError> {
    let topology = build_topology(scenario, seed)?;
    let sim = Simulation::new(scenario, &topology, seed, partitions).map_err(|engine::SimError::Scenario(e)| e)?;
    Ok(sim.run(progress))
}
