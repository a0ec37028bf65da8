//! `x0 merge DIR...`: puts the shards of a sweep back together. Each directory holds what
//! `x0 run --shard` wrote; the merged directory holds what one run of all those seeds
//! would have written: the same rows, the same summary, the same combined fingerprint.

use crate::out::outln;
use crate::report::{FaultRow, Parts, RunReport};
use crate::{files, plot};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use x0tta6bl4::scenario::Scenario;

#[derive(clap::Args)]
pub struct MergeArgs {
    /// Result directories of `x0 run` (typically one per shard).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where to write the merged results [default: results/<scenario name>/merged].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the merged report as JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

fn read_report(dir: &Path) -> anyhow::Result<RunReport> {
    let path = dir.join("run.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let report: RunReport =
        serde_json::from_str(&text).with_context(|| format!("{}: not a run.json written by x0 run", path.display()))?;
    if let Some(s) = report.seed_runs.iter().find(|s| s.fingerprint.len() != 32 || u128::from_str_radix(&s.fingerprint, 16).is_err()) {
        bail!("{}: seed {} has fingerprint {:?}, not 32 hex digits; the file was edited or damaged", path.display(), s.seed, s.fingerprint);
    }
    Ok(report)
}

pub fn merge(args: &MergeArgs) -> anyhow::Result<ExitCode> {
    let mut reports = Vec::new();
    let mut rows: Vec<FaultRow> = Vec::new();
    for dir in &args.dirs {
        reports.push(read_report(dir)?);
        rows.extend(files::read_faults(&dir.join("faults.parquet"))?);
    }
    let first = &reports[0];
    for (dir, r) in args.dirs.iter().zip(&reports).skip(1) {
        if r.scenario.source != first.scenario.source {
            bail!("{} ran a different scenario file than {}; only shards of one sweep merge", dir.display(), args.dirs[0].display());
        }
        if r.commit != first.commit {
            eprintln!(
                "warning: {} was run by commit {} and {} by {}: fingerprints of different commits are not comparable",
                dir.display(),
                r.commit,
                args.dirs[0].display(),
                first.commit
            );
        }
    }
    let scenario = Scenario::parse(&first.scenario.source, &first.scenario.path)
        .context("the scenario stored in run.json no longer parses with this x0")?;
    let mut seed_runs: Vec<_> = reports.iter().flat_map(|r| r.seed_runs.iter().cloned()).collect();
    seed_runs.sort_by_key(|s| s.seed);
    if let Some(w) = seed_runs.windows(2).find(|w| w[0].seed == w[1].seed) {
        bail!("seed {} appears in more than one directory; merge each shard once", w[0].seed);
    }
    rows.sort_by_key(|r| (r.seed, r.t_inject_ns, r.spec, r.instance));
    let mut loop_examples: Vec<_> = reports.iter().flat_map(|r| r.loop_examples.iter().cloned()).collect();
    loop_examples.sort_by(|a, b| (a.seed, a.at_ms).partial_cmp(&(b.seed, b.at_ms)).expect("times are finite"));
    let parts = Parts {
        seed_runs,
        loop_examples,
        nodes: first.nodes,
        links: first.links,
        sim_seconds: reports.iter().map(|r| r.sim_seconds).sum(),
        threads: reports.iter().map(|r| r.threads).max().unwrap_or(1),
        wall: Duration::from_secs_f64(reports.iter().map(|r| r.wall_seconds).sum()),
        shard: None,
        commit: first.commit.clone(),
    };
    let report = RunReport::assemble(&scenario, parts, &rows);

    let out = args.out.clone().unwrap_or_else(|| PathBuf::from("results").join(&scenario.name).join("merged"));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    files::write_all(&out, &rows, &report)?;
    plot::mttr_cdf(&out.join("mttr.png"), &rows, &scenario.name)?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        outln!("merged {} directories: seeds {:?}", args.dirs.len(), report.seeds);
        report.print_table(&out);
        outln!("fingerprint: {}", report.fingerprint);
    }
    Ok(if report.passed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
