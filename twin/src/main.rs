//! `x0`: the console of x0tta6bl4. One binary drives the simulator now (and the live mesh
//! and the digital twin later): run a chaos scenario, validate one, export a topology.

use clap::{Parser, Subcommand};
use x0_twin::out::outln;
use x0_twin::{bench, compare, keys, live, merge, peer, run, topo};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "x0", version, about = "Self-healing mesh: chaos scenarios, simulation, MTTD/MTTR benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario in the simulator and report MTTD/MTTR.
    Run(run::RunArgs),
    /// Run a scenario on a real mesh: x0-node processes in network namespaces (root).
    Live(live::LiveArgs),
    /// Run a scenario in the simulator and on a namespace mesh (root); MTTD/MTTR side by side.
    Compare(compare::CompareArgs),
    /// Check a scenario (syntax, units, topology, node ids) without running it.
    Validate {
        /// The scenario YAML file.
        scenario: PathBuf,
    },
    /// Build or load a topology and describe it, or export it as Graphviz DOT.
    Topo(topo::TopoArgs),
    /// Merge the result directories of a sharded sweep (`x0 run --shard I/N`).
    Merge(merge::MergeArgs),
    /// Key material for link security: key pairs, the trust anchor, node certificates.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Benchmarks: the engine (phold), and x0-node against babeld (peer).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Live(args) => live::live(&args),
        Command::Compare(args) => compare::compare(&args),
        Command::Validate { scenario } => validate(&scenario),
        Command::Topo(args) => topo::topo(&args).map(|()| ExitCode::SUCCESS),
        Command::Merge(args) => merge::merge(&args),
        Command::Keys(cmd) => keys::keys(&cmd),
        Command::Bench(bench::BenchCommand::Phold(args)) => bench::phold(&args).map(|()| ExitCode::SUCCESS),
        Command::Bench(bench::BenchCommand::Peer(args)) => peer::peer(&args).map(|()| ExitCode::SUCCESS),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            // Scenario errors carry their own "error:" header and snippet. A cause that
            // its context already spells out (thiserror messages quoting their source) is
            // said once.
            let mut text = String::new();
            for cause in e.chain().map(|c| c.to_string()) {
                if !text.contains(&cause) {
                    if !text.is_empty() {
                        text.push_str(": ");
                    }
                    text.push_str(&cause);
                }
            }
            if text.starts_with("error") { eprintln!("{text}") } else { eprintln!("error: {text}") }
            ExitCode::from(2)
        }
    }
}

fn validate(path: &std::path::Path) -> anyhow::Result<ExitCode> {
    let (scenario, topology) = x0_sim::load(path)?;
    outln!(
        "ok: {} — {} ({} nodes, {} links), {} fault entr{}, {} seed{}, {} long",
        scenario.name,
        topology.description,
        topology.node_count(),
        topology.edge_count(),
        scenario.faults.len(),
        if scenario.faults.len() == 1 { "y" } else { "ies" },
        scenario.seeds,
        if scenario.seeds == 1 { "" } else { "s" },
        x0tta6bl4::time::DisplayDuration(scenario.duration),
    );
    Ok(ExitCode::SUCCESS)
}
