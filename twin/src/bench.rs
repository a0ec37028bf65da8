//! `x0 bench phold`: the engine benchmark, against a raw `BinaryHeap` running the same
//! model. Timing lives here, in the console: the simulator never reads a clock.

use crate::out::outln;
use serde::Serialize;
use std::time::Instant;
use x0_sim::phold::{self, Phold, PholdOutcome};

#[derive(clap::Args)]
pub struct PholdArgs {
    /// Logical processes.
    #[arg(long, default_value_t = 1024)]
    pub lps: u32,
    /// Initial events per logical process (the queue holds lps × this).
    #[arg(long, default_value_t = 16)]
    pub events_per_lp: u32,
    /// Share of events sent to another logical process.
    #[arg(long, default_value_t = 0.1)]
    pub remote: f64,
    /// Minimum timestamp increment, in units of the exponential's mean.
    #[arg(long, default_value_t = 0.1)]
    pub lookahead: f64,
    /// Events to process per timed run.
    #[arg(long, default_value_t = 20_000_000)]
    pub events: u64,
    /// Timed runs of each; the best is reported.
    #[arg(long, default_value_t = 3)]
    pub repeat: u32,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// PHOLD on the simulator's event engine, with a raw BinaryHeap as the baseline.
    Phold(PholdArgs),
    /// x0-node against babeld on one namespace topology: cold-start delivery, reroute after
    /// a crash, CPU (root).
    Peer(crate::peer::PeerArgs),
}

/// `x0 bench phold --json`. Field names are a stable interface.
#[derive(Serialize)]
pub struct PholdReport {
    pub lps: u32,
    pub events_per_lp: u32,
    pub remote: f64,
    pub lookahead: f64,
    pub events: u64,
    pub events_per_sec: f64,
    pub heap_baseline_events_per_sec: f64,
    pub heap_baseline_ratio: f64,
    pub checksum: String,
}

fn best_rate(repeat: u32, run: impl Fn() -> PholdOutcome) -> (f64, PholdOutcome) {
    let mut best = 0.0f64;
    let mut outcome = None;
    for _ in 0..repeat.max(1) {
        let start = Instant::now();
        let o = run();
        let rate = o.events as f64 / start.elapsed().as_secs_f64();
        best = best.max(rate);
        outcome = Some(o);
    }
    (best, outcome.expect("at least one run"))
}

pub fn phold(a: &PholdArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.lps >= 1 && a.events_per_lp >= 1, "--lps and --events-per-lp must be at least 1");
    anyhow::ensure!((0.0..=1.0).contains(&a.remote), "--remote is a share between 0 and 1");
    anyhow::ensure!(a.lookahead >= 0.0 && a.lookahead.is_finite(), "--lookahead must be zero or more");
    anyhow::ensure!(a.events >= 1, "--events must be at least 1");
    let p = Phold {
        lps: a.lps,
        events_per_lp: a.events_per_lp,
        remote: a.remote,
        lookahead: a.lookahead,
        events: a.events,
        seed: a.seed,
    };
    anyhow::ensure!(
        p.initial_events() <= phold::INITIAL_EVENTS_MAX,
        "--lps × --events-per-lp is {} initial events, more than the {} (3 GiB of queue) a run may start with: lower one of them",
        p.initial_events(),
        phold::INITIAL_EVENTS_MAX
    );
    let (engine, e) = best_rate(a.repeat, || phold::run_engine(&p));
    let (baseline, b) = best_rate(a.repeat, || phold::run_heap_baseline(&p));
    anyhow::ensure!(e == b, "the engine and the baseline disagree ({e:?} vs {b:?}): they did not do the same work");
    let report = PholdReport {
        lps: a.lps,
        events_per_lp: a.events_per_lp,
        remote: a.remote,
        lookahead: a.lookahead,
        events: e.events,
        events_per_sec: engine,
        heap_baseline_events_per_sec: baseline,
        heap_baseline_ratio: engine / baseline,
        checksum: format!("{:016x}", e.checksum),
    };
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        outln!(
            "PHOLD: {} LPs x {} events, remote {}, lookahead {}; {} events per run, best of {}",
            a.lps, a.events_per_lp, a.remote, a.lookahead, e.events, a.repeat
        );
        outln!("engine (radix event queue):   {:>6.2} M events/s", engine / 1e6);
        outln!("raw std BinaryHeap baseline:  {:>6.2} M events/s", baseline / 1e6);
        outln!("engine / baseline:            {:>6.2}x", engine / baseline);
        outln!("checksum: {:016x} (identical for both)", e.checksum);
    }
    Ok(())
}
