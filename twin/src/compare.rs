//! `x0 compare`: one scenario in the simulator and on a namespace mesh, for the same seed
//! (same probe pairs, same fault targets), MTTD and MTTR side by side.

use crate::live::run_live;
use crate::out::outln;
use crate::run::execute;
use anyhow::Context;
use clap::Args;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;
use x0tta6bl4::metrics::Summary;

#[derive(Args)]
pub struct CompareArgs {
    /// The scenario YAML file.
    pub scenario: PathBuf,
    /// Directory for both runs' files (sim/ and live/) [default: results/<scenario name>-compare].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the comparison as JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// The x0-node binary [default: beside this x0].
    #[arg(long)]
    pub node_binary: Option<PathBuf>,
}

#[derive(Serialize)]
struct Row {
    metric: &'static str,
    sim: f64,
    live: f64,
    /// live − sim, in the metric's unit.
    difference: f64,
    /// (live − sim) / sim; absent when sim is 0.
    relative: Option<f64>,
}

#[derive(Serialize)]
struct Comparison {
    scenario: String,
    seed: u64,
    rows: Vec<Row>,
    sim: Summary,
    live: Summary,
}

type Field = fn(&Summary) -> f64;

fn rows(sim: &Summary, live: &Summary) -> Vec<Row> {
    let pick: [(&'static str, Field); 12] = [
        ("MTTD mean (ms)", |s| s.mttd.mean),
        ("MTTD p50 (ms)", |s| s.mttd.p50),
        ("MTTD p99 (ms)", |s| s.mttd.p99),
        ("MTTR mean (ms)", |s| s.mttr.mean),
        ("MTTR p50 (ms)", |s| s.mttr.p50),
        ("MTTR p99 (ms)", |s| s.mttr.p99),
        ("steady state p99 (ms)", |s| s.steady.p99),
        ("faults detected", |s| s.detected as f64),
        ("faults disrupting routing", |s| s.disrupted as f64),
        ("unrecovered", |s| s.unrecovered as f64),
        ("false positives", |s| s.false_positives as f64),
        ("probe success", |s| s.probe_success),
    ];
    pick.iter()
        .map(|&(metric, f)| {
            let (a, b) = (f(sim), f(live));
            Row { metric, sim: a, live: b, difference: b - a, relative: (a != 0.0).then(|| (b - a) / a) }
        })
        .collect()
}

pub fn compare(args: &CompareArgs) -> anyhow::Result<ExitCode> {
    let (scenario, topo) = x0_sim::load(&args.scenario)?;
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from("results").join(format!("{}-compare", scenario.name)));
    // The live run first: it is the one that can be refused (root, fault kinds).
    let live = run_live(&scenario, &topo, args.node_binary.as_deref(), &out.join("live"))?.report;
    let sim = execute(&scenario, &[scenario.seed], 1, 1, false).context("the simulated run")?.report;
    for (dir, report) in [("sim", &sim), ("live", &live)] {
        let dir = out.join(dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join("run.json"), serde_json::to_string_pretty(report)? + "\n")
            .with_context(|| format!("writing {}", dir.join("run.json").display()))?;
    }
    let comparison = Comparison {
        scenario: scenario.name.clone(),
        seed: scenario.seed,
        rows: rows(&sim.summary, &live.summary),
        sim: sim.summary.clone(),
        live: live.summary.clone(),
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&comparison)?);
    } else {
        let mut table = Table::new();
        table.load_style(UTF8_FULL_CONDENSED);
        table.set_header(["metric", "simulator", "live", "live − sim", "relative"]);
        for r in &comparison.rows {
            let rel = r.relative.map_or("-".to_string(), |x| format!("{:+.1}%", 100.0 * x));
            table.add_row([r.metric.to_string(), format!("{:.3}", r.sim), format!("{:.3}", r.live), format!("{:+.3}", r.difference), rel]);
        }
        outln!("{}: seed {}, the same probe pairs and fault targets in both\n{table}", scenario.name, scenario.seed);
        for w in &live.warnings {
            outln!("warning: {w}");
        }
        outln!("results: {}", out.display());
    }
    Ok(ExitCode::SUCCESS)
}
