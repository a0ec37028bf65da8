//! The run report: what `run.json` and `x0 run --json` contain, and the terminal table.
//! Field names are a stable interface for scripts and dashboards.

use crate::out::outln;
use comfy_table::{Cell, Color, Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;
use x0_sim::{LoopSample, RunResult};
use x0tta6bl4::metrics::{AssertionResult, Stats, Summary};
use x0tta6bl4::scenario::Scenario;
use x0tta6bl4::trace::{Digest, Fingerprint};

#[derive(Serialize)]
pub struct ScenarioInfo {
    pub name: String,
    pub path: String,
    pub description: Option<String>,
    /// The scenario file as it was run.
    pub source: String,
}

#[derive(Serialize)]
pub struct SeedInfo {
    pub seed: u64,
    pub fingerprint: String,
    pub trace_records: u64,
    pub events: u64,
    pub wall_seconds: f64,
    /// Probe success between warmup and the first fault.
    pub baseline_success: Option<f64>,
    pub timer_spins: u64,
}

#[derive(Serialize)]
pub struct LoopInfo {
    pub seed: u64,
    pub at_ms: f64,
    pub dest: u32,
    pub cycle: Vec<u32>,
}

#[derive(Serialize)]
pub struct RunReport {
    pub scenario: ScenarioInfo,
    pub commit: &'static str,
    pub seeds: Vec<u64>,
    pub threads: usize,
    /// Hash of all seeds' event traces, in seed order.
    pub fingerprint: String,
    pub seed_runs: Vec<SeedInfo>,
    pub nodes: u32,
    pub links: usize,
    /// Events processed, all seeds.
    pub events: u64,
    /// Simulated seconds, all seeds.
    pub sim_seconds: f64,
    pub wall_seconds: f64,
    pub peak_rss_bytes: Option<u64>,
    pub summary: Summary,
    pub assertions: Vec<AssertionResult>,
    pub passed: bool,
    pub loop_examples: Vec<LoopInfo>,
    /// Things the user should know that are not failures: faults that hit nothing.
    pub warnings: Vec<String>,
}

/// Peak resident set size of this process (Linux `VmHWM`).
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

impl RunReport {
    pub fn new(scenario: &Scenario, runs: &[(RunResult, Duration)], threads: usize, wall: Duration) -> Self {
        let per_seed: Vec<_> = runs.iter().map(|(r, _)| (r.faults.as_slice(), &r.counters)).collect();
        let summary = Summary::of(&per_seed);
        let assertions: Vec<AssertionResult> = scenario.assertions.iter().map(|a| summary.check(a)).collect();
        let digests: Vec<Digest> = runs.iter().map(|(r, _)| r.fingerprint).collect();
        let first = runs.first().map(|(r, _)| r);
        RunReport {
            scenario: ScenarioInfo {
                name: scenario.name.clone(),
                path: scenario.origin.name.clone(),
                description: scenario.description.clone(),
                source: scenario.origin.text.clone(),
            },
            commit: env!("X0_COMMIT"),
            seeds: runs.iter().map(|(r, _)| r.seed).collect(),
            threads,
            fingerprint: Fingerprint::combine(&digests).to_string(),
            seed_runs: runs
                .iter()
                .map(|(r, w)| SeedInfo {
                    seed: r.seed,
                    fingerprint: r.fingerprint.to_string(),
                    trace_records: r.trace_records,
                    events: r.engine.events,
                    wall_seconds: w.as_secs_f64(),
                    baseline_success: r.baseline_success,
                    timer_spins: r.engine.timer_spins,
                })
                .collect(),
            nodes: first.map_or(0, |r| r.nodes),
            links: first.map_or(0, |r| r.links),
            events: runs.iter().map(|(r, _)| r.engine.events).sum(),
            sim_seconds: runs.iter().map(|(r, _)| r.sim_seconds).sum(),
            wall_seconds: wall.as_secs_f64(),
            peak_rss_bytes: peak_rss_bytes(),
            passed: assertions.iter().all(|a| a.passed),
            assertions,
            summary,
            warnings: runs
                .iter()
                .flat_map(|(r, _)| r.faults.iter().map(move |(f, _)| (r.seed, f)))
                .filter(|(_, f)| f.nodes.is_empty() && f.links.is_empty())
                .map(|(seed, f)| {
                    format!(
                        "seed {seed}: fault {:?} (faults[{}], injection {}) hit nothing: its target matched no node or link here",
                        f.name, f.spec, f.instance
                    )
                })
                .collect(),
            loop_examples: runs
                .iter()
                .flat_map(|(r, _)| r.loop_examples.iter().map(move |l: &LoopSample| (r.seed, l)))
                .map(|(seed, l)| LoopInfo {
                    seed,
                    at_ms: l.at.as_secs_f64() * 1e3,
                    dest: l.dest.0,
                    cycle: l.cycle.iter().map(|n| n.0).collect(),
                })
                .collect(),
        }
    }

    pub fn print_table(&self, out: &Path) {
        let s = &self.summary;
        outln!(
            "{}: {} nodes, {} links, {} seed{}, {:.1} simulated s in {:.1} s wall ({:.1}x real time)",
            self.scenario.name,
            self.nodes,
            self.links,
            self.seeds.len(),
            if self.seeds.len() == 1 { "" } else { "s" },
            self.sim_seconds,
            self.wall_seconds,
            self.sim_seconds / self.wall_seconds.max(1e-9),
        );
        let mut t = Table::new();
        t.load_style(UTF8_FULL_CONDENSED);
        t.set_header(["metric (ms)", "count", "mean", "p50", "p95", "p99", "max"]);
        let row = |t: &mut Table, name: &str, st: &Stats| {
            if st.count == 0 {
                t.add_row(vec![name.to_string(), "0".into(), "-".into(), "-".into(), "-".into(), "-".into(), "-".into()]);
            } else {
                let f = |v: f64| format!("{v:.1}");
                t.add_row(vec![
                    name.to_string(),
                    st.count.to_string(),
                    f(st.mean),
                    f(st.p50),
                    f(st.p95),
                    f(st.p99),
                    f(st.max),
                ]);
            }
        };
        row(&mut t, "MTTD", &s.mttd);
        row(&mut t, "MTTR", &s.mttr);
        row(&mut t, "steady state", &s.steady);
        outln!("{t}");
        let mut c = Table::new();
        c.load_style(UTF8_FULL_CONDENSED);
        let stretch = if s.stretch.count == 0 {
            "-".to_string()
        } else {
            format!("p50 {:.2}, p99 {:.2}, max {:.2} ({} samples)", s.stretch.p50, s.stretch.p99, s.stretch.max, s.stretch.count)
        };
        for (k, v) in [
            ("faults injected", s.faults.to_string()),
            ("detected / disrupted routing", format!("{} / {}", s.detected, s.disrupted)),
            ("unrecovered", s.unrecovered.to_string()),
            ("false positives", s.false_positives.to_string()),
            ("forwarding loops seen", s.loops.to_string()),
            ("probe success after warmup", format!("{:.3}% of {}", s.probe_success * 100.0, s.probes)),
            ("route stretch (hops)", stretch),
            ("control overhead", format!("{:.0} bytes/node/s", s.overhead)),
        ] {
            c.add_row(vec![k.to_string(), v]);
        }
        outln!("{c}");
        if !self.assertions.is_empty() {
            let mut a = Table::new();
            a.load_style(UTF8_FULL_CONDENSED);
            a.set_header(["assertion", "actual", "result"]);
            for r in &self.assertions {
                let actual = r.actual.map_or_else(|| "no samples".to_string(), |v| format!("{v:.3}"));
                let (text, color) = if r.passed { ("PASS", Color::Green) } else { ("FAIL", Color::Red) };
                a.add_row(vec![Cell::new(&r.assertion), Cell::new(actual), Cell::new(text).fg(color)]);
            }
            outln!("{a}");
            let failed = self.assertions.iter().filter(|r| !r.passed).count();
            if failed > 0 {
                outln!("{failed} assertion{} failed", if failed == 1 { "" } else { "s" });
            }
        }
        for w in &self.warnings {
            outln!("warning: {w}");
        }
        outln!("results: {}", out.display());
    }
}
