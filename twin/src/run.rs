//! `x0 run`: seeds in parallel (rayon), a progress bar for long runs, then the table,
//! the result files and the exit status the assertions decide.

use crate::out::outln;
use crate::report::{FaultRow, RunReport, fault_rows};
use crate::{files, plot};
use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use x0_sim::RunResult;
use x0tta6bl4::scenario::Scenario;

#[derive(clap::Args)]
pub struct RunArgs {
    /// The scenario YAML file.
    pub scenario: PathBuf,
    /// Run this one seed instead of the scenario's.
    #[arg(long, conflicts_with = "seeds")]
    pub seed: Option<u64>,
    /// Run this many seeds, starting at the scenario's seed.
    #[arg(long)]
    pub seeds: Option<u32>,
    /// Worker threads for seeds (default: all cores). Results do not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Split each seed's simulation over this many cores (conservative parallel
    /// simulation; at most --threads are busy at once). Default: the threads that seeds
    /// leave idle, for topologies of at least 1,000 nodes; otherwise 1. Results do not
    /// depend on it.
    #[arg(long)]
    pub partitions: Option<usize>,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Run only shard I of N of the seeds (every N-th, starting at the I-th; I from 0),
    /// so a sweep can be spread over machines and put back together with `x0 merge`.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,
}

/// Where and how a run's report goes; shared by `x0 run` and `x0 live`.
#[derive(clap::Args)]
pub struct OutputArgs {
    /// Directory for faults/summary Parquet+CSV, mttr.png and run.json
    /// [default: results/<scenario name>, or results/<scenario name>-live for x0 live].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the run report as JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write every event and every probe (events.parquet/csv, probes.parquet/csv).
    #[arg(long)]
    pub trace: bool,
}

/// Shard `index` of `count`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

fn parse_shard(s: &str) -> Result<Shard, String> {
    let bad = || format!("{s:?}: expected I/N with 0 <= I < N, e.g. 3/10");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (index, count) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if count == 0 || index >= count {
        return Err(bad());
    }
    Ok(Shard { index, count })
}

impl Shard {
    /// This shard's seeds, in order: the sweep's seeds at positions `index`, `index + count`...
    pub fn select(&self, seeds: &[u64]) -> Vec<u64> {
        seeds.iter().skip(self.index as usize).step_by(self.count as usize).copied().collect()
    }
}

/// Runs longer than this get a progress bar.
const PROGRESS_AFTER: Duration = Duration::from_secs(1);

/// A finished run: every seed's result with its wall time, one row per fault per seed,
/// and the report over them all.
pub struct Finished {
    pub runs: Vec<(RunResult, Duration)>,
    pub rows: Vec<FaultRow>,
    pub report: RunReport,
}

/// Smallest topology that `x0 run` splits over idle cores by default: below it, a seed runs
/// in a few seconds and the windows' hand-overs cost more than a second core gains.
const AUTO_PARTITION_NODES: u32 = 1_000;

/// How many cores `x0 run` gives one seed: what `--partitions` says, or else the threads
/// the seeds leave idle, for large topologies.
pub fn partitions_for(asked: Option<usize>, threads: usize, seeds: usize, nodes: u32) -> usize {
    asked.unwrap_or(if nodes >= AUTO_PARTITION_NODES { (threads / seeds.max(1)).max(1) } else { 1 })
}

/// Runs `seeds` of `scenario` on `threads` workers, each seed's simulation split over
/// `partitions` of them; what `x0 run` does before writing anything. Results do not depend
/// on `threads` or `partitions`, and are gathered in seed order.
pub fn execute(scenario: &Scenario, seeds: &[u64], threads: usize, partitions: usize, show_bar: bool) -> anyhow::Result<Finished> {
    let started = Instant::now();
    anyhow::ensure!(threads >= 1, "--threads must be at least 1");
    anyhow::ensure!(partitions >= 1, "--partitions must be at least 1");
    anyhow::ensure!(!seeds.is_empty(), "--seeds must be at least 1");
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().context("starting worker threads")?;
    let progress: Vec<AtomicU64> = seeds.iter().map(|_| AtomicU64::new(0)).collect();
    let done = AtomicBool::new(false);
    let per_seed_ns = u64::try_from(scenario.duration.as_nanos()).unwrap_or(u64::MAX);
    let results = std::thread::scope(|s| {
        if show_bar {
            s.spawn(|| show_progress(&progress, &done, per_seed_ns));
        }
        let results: Vec<_> = pool.install(|| {
            seeds
                .par_iter()
                .enumerate()
                .map(|(i, &seed)| {
                    let t = Instant::now();
                    x0_sim::run_seed(scenario, seed, partitions, Some(&progress[i])).map(|r| (r, t.elapsed()))
                })
                .collect()
        });
        done.store(true, Ordering::Relaxed);
        results
    });
    let mut runs = Vec::with_capacity(results.len());
    for r in results {
        runs.push(r?);
    }
    let rows = fault_rows(&runs);
    let report = RunReport::new(scenario, &runs, &rows, threads, started.elapsed());
    Ok(Finished { runs, rows, report })
}

pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let (scenario, topology) = x0_sim::load(&args.scenario)?;
    let seeds: Vec<u64> = match (args.seed, args.seeds) {
        (Some(s), _) => vec![s],
        (None, Some(n)) => (0..u64::from(n)).map(|i| scenario.seed.wrapping_add(i)).collect(),
        (None, None) => scenario.seed_list(),
    };
    let seeds = match args.shard {
        Some(shard) => {
            let mine = shard.select(&seeds);
            anyhow::ensure!(!mine.is_empty(), "shard {shard} of {} seeds has no seed; use fewer shards", seeds.len());
            mine
        }
        None => seeds,
    };
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let partitions = partitions_for(args.partitions, threads, seeds.len(), topology.node_count());
    let default_dir = match args.shard {
        Some(s) => PathBuf::from("results").join(&scenario.name).join(format!("shard-{}-of-{}", s.index, s.count)),
        None => PathBuf::from("results").join(&scenario.name),
    };
    let out = args.output.out.clone().unwrap_or(default_dir);
    let out = files::prepare_out(&out)?;
    let Finished { runs, rows, mut report } = execute(&scenario, &seeds, threads, partitions, !args.output.json)?;
    report.shard = args.shard.map(|s| s.to_string());
    present(&out, &runs, &rows, &report, &args.output, &scenario.name)?;
    Ok(if report.passed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Writes a run's files into `out` (Parquet, CSV, run.json, mttr.png, and with `trace` the
/// events and probes) and prints the table or, with `json`, the report: the same for the
/// simulator and for a live mesh.
pub fn present(
    out: &files::OutDir,
    runs: &[(RunResult, Duration)],
    rows: &[FaultRow],
    report: &RunReport,
    how: &OutputArgs,
    name: &str,
) -> anyhow::Result<()> {
    let (json, trace) = (how.json, how.trace);
    let out = out.path();
    files::write_all(out, rows, report)?;
    if trace {
        files::write_trace(out, runs)?;
    }
    plot::mttr_cdf(&out.join("mttr.png"), rows, name)?;
    if json {
        outln!("{}", serde_json::to_string_pretty(report)?);
    } else {
        report.print_table(out);
        outln!("fingerprint: {}", report.fingerprint);
    }
    Ok(())
}

/// Draws a bar of simulated time over all seeds once the run has lasted a second, so short
/// runs print nothing extra. Hidden when stderr is not a terminal.
fn show_progress(progress: &[AtomicU64], done: &AtomicBool, per_seed_ns: u64) {
    let total = per_seed_ns.saturating_mul(progress.len() as u64) / 1_000_000;
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} sim-ms  {msg}")
            .expect("static template"),
    );
    let start = Instant::now();
    let mut shown = false;
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if !shown && start.elapsed() >= PROGRESS_AFTER {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            shown = true;
        }
        let sim_ns: u64 = progress.iter().map(|p| p.load(Ordering::Relaxed)).sum();
        let finished = progress.iter().filter(|p| p.load(Ordering::Relaxed) >= per_seed_ns).count();
        bar.set_position(sim_ns / 1_000_000);
        bar.set_message(format!("{finished}/{} seeds", progress.len()));
    }
    bar.finish_and_clear();
}
