//! The run report: what `run.json` and `x0 run --json` contain, and the terminal table.
//! Field names are a stable interface for scripts and dashboards.

use crate::out::outln;
use comfy_table::{Cell, Color, Table, presets::UTF8_FULL_CONDENSED};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;
use x0_sim::{LoopSample, RunResult};
use x0tta6bl4::metrics::{AssertionResult, FaultOutcome, FaultRecord, RunCounters, Stats, Summary};
use x0tta6bl4::time::Instant;
use x0tta6bl4::scenario::Scenario;
use x0tta6bl4::trace::{Digest, Fingerprint};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioInfo {
    pub name: String,
    pub path: String,
    pub description: Option<String>,
    /// The scenario file as it was run.
    pub source: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedInfo {
    pub seed: u64,
    pub fingerprint: String,
    pub trace_records: u64,
    pub events: u64,
    pub wall_seconds: f64,
    /// Cores (simulator partitions) this seed's run was split over; results do not depend
    /// on it. Reports from before it existed ran on one.
    #[serde(default = "one")]
    pub partitions: u32,
    /// Probe success between warmup and the first fault.
    pub baseline_success: Option<f64>,
    pub timer_spins: u64,
    /// Mean memory of a live node at the end of the run (`Node::state_bytes`): routing
    /// table, neighbour table, buffers and the node itself. Absent in reports from before
    /// it was measured.
    #[serde(default)]
    pub state_bytes_per_node: u64,
    /// Mean route-table entries per live node at the end of the run.
    #[serde(default)]
    pub route_entries_per_node: f64,
    /// Run-wide counters (loops, false positives, probes, overhead, stretch samples):
    /// with faults.parquet, all `x0 merge` needs to recompute the summary.
    pub counters: RunCounters,
}

fn one() -> u32 {
    1
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoopInfo {
    pub seed: u64,
    pub at_ms: f64,
    pub dest: u32,
    pub cycle: Vec<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub scenario: ScenarioInfo,
    pub commit: String,
    pub seeds: Vec<u64>,
    /// `i/N` when this run was one shard of a sweep.
    pub shard: Option<String>,
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

/// One injection of one fault in one seed: a row of faults.parquet. Times are integer
/// nanoseconds here; the files hold milliseconds, from which these round-trip exactly.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultRow {
    pub seed: u64,
    pub name: String,
    pub kind: String,
    pub spec: u32,
    pub instance: u32,
    /// Node ids, or links as `a-b`, space-separated.
    pub targets: String,
    /// Counted in the aggregates (see `FaultKind::is_failure`).
    pub failure: bool,
    pub node_fault: bool,
    pub t_inject_ns: u64,
    pub t_heal_ns: Option<u64>,
    pub t_detect_ns: Option<u64>,
    pub t_reroute_ns: Option<u64>,
    pub t_steady_ns: Option<u64>,
    pub disrupted_pairs: u32,
    pub unrecovered_pairs: u32,
    pub probes_sent: u32,
    pub probes_lost: u32,
    pub false_positives: u32,
}

impl FaultRow {
    pub fn from_run(seed: u64, f: &FaultRecord, o: &FaultOutcome) -> Self {
        let nodes = f.nodes.iter().map(|n| n.0.to_string());
        let links = f.links.iter().map(|(a, b)| format!("{}-{}", a.0, b.0));
        FaultRow {
            seed,
            name: f.name.clone(),
            kind: f.kind.to_string(),
            spec: f.spec,
            instance: f.instance,
            targets: nodes.chain(links).collect::<Vec<_>>().join(" "),
            failure: f.failure,
            node_fault: f.node_fault,
            t_inject_ns: f.t_inject.as_nanos(),
            t_heal_ns: f.t_heal.map(Instant::as_nanos),
            t_detect_ns: o.t_detect.map(Instant::as_nanos),
            t_reroute_ns: o.t_reroute.map(Instant::as_nanos),
            t_steady_ns: o.t_steady.map(Instant::as_nanos),
            disrupted_pairs: o.disrupted_pairs,
            unrecovered_pairs: o.unrecovered_pairs,
            probes_sent: o.probes_sent,
            probes_lost: o.probes_lost,
            false_positives: o.false_positives,
        }
    }

    /// The record and outcome the metric definitions aggregate (targets are not needed).
    pub fn to_metrics(&self) -> (FaultRecord, FaultOutcome) {
        let at = Instant::from_nanos;
        let record = FaultRecord {
            spec: self.spec,
            instance: self.instance,
            name: self.name.clone(),
            kind: "",
            node_fault: self.node_fault,
            failure: self.failure,
            // Detection is already computed: the kind of detection does not matter here.
            byzantine: false,
            t_inject: at(self.t_inject_ns),
            t_heal: self.t_heal_ns.map(at),
            nodes: Vec::new(),
            links: Vec::new(),
        };
        let outcome = FaultOutcome {
            t_detect: self.t_detect_ns.map(at),
            t_reroute: self.t_reroute_ns.map(at),
            t_steady: self.t_steady_ns.map(at),
            disrupted_pairs: self.disrupted_pairs,
            unrecovered_pairs: self.unrecovered_pairs,
            probes_sent: self.probes_sent,
            probes_lost: self.probes_lost,
            false_positives: self.false_positives,
        };
        (record, outcome)
    }

    fn since_inject_ms(&self, t: Option<u64>) -> Option<f64> {
        t.map(|t| t.saturating_sub(self.t_inject_ns) as f64 / 1e6)
    }

    pub fn mttd_ms(&self) -> Option<f64> {
        self.since_inject_ms(self.t_detect_ns)
    }

    pub fn mttr_ms(&self) -> Option<f64> {
        self.since_inject_ms(self.t_reroute_ns)
    }

    pub fn steady_ms(&self) -> Option<f64> {
        self.since_inject_ms(self.t_steady_ns)
    }
}

/// Peak resident set size of this process (Linux `VmHWM`).
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// What a report is made of, from a run or from merged shards.
pub struct Parts {
    pub seed_runs: Vec<SeedInfo>,
    pub loop_examples: Vec<LoopInfo>,
    pub nodes: u32,
    pub links: usize,
    pub sim_seconds: f64,
    pub threads: usize,
    pub wall: Duration,
    pub shard: Option<String>,
    pub commit: String,
}

impl RunReport {
    /// The report over finished runs; `rows` are their `fault_rows`.
    pub fn new(scenario: &Scenario, runs: &[(RunResult, Duration)], rows: &[FaultRow], threads: usize, wall: Duration) -> Self {
        let first = runs.first().map(|(r, _)| r);
        let parts = Parts {
            seed_runs: runs
                .iter()
                .map(|(r, w)| SeedInfo {
                    seed: r.seed,
                    fingerprint: r.fingerprint.to_string(),
                    trace_records: r.trace_records,
                    events: r.engine.events,
                    wall_seconds: w.as_secs_f64(),
                    partitions: r.partitions,
                    baseline_success: r.baseline_success,
                    timer_spins: r.engine.timer_spins,
                    state_bytes_per_node: r.state_bytes.total() as u64 / u64::from(r.live_nodes.max(1)),
                    route_entries_per_node: r.route_entries as f64 / f64::from(r.live_nodes.max(1)),
                    counters: r.counters.clone(),
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
            nodes: first.map_or(0, |r| r.nodes),
            links: first.map_or(0, |r| r.links),
            sim_seconds: runs.iter().map(|(r, _)| r.sim_seconds).sum(),
            threads,
            wall,
            shard: None,
            commit: env!("X0_COMMIT").to_string(),
        };
        Self::assemble(scenario, parts, rows)
    }

    /// The report over `parts`: the summary from the rows and counters, the assertions of
    /// `scenario` checked against it, and the combined fingerprint in seed order.
    pub fn assemble(scenario: &Scenario, parts: Parts, rows: &[FaultRow]) -> Self {
        let metrics: Vec<(u64, Vec<(FaultRecord, FaultOutcome)>)> = parts
            .seed_runs
            .iter()
            .map(|s| (s.seed, rows.iter().filter(|r| r.seed == s.seed).map(FaultRow::to_metrics).collect()))
            .collect();
        let per_seed: Vec<_> =
            metrics.iter().zip(&parts.seed_runs).map(|((_, faults), s)| (faults.as_slice(), &s.counters)).collect();
        let summary = Summary::of(&per_seed);
        let assertions: Vec<AssertionResult> = scenario.assertions.iter().map(|a| summary.check(a)).collect();
        let digests: Vec<Digest> =
            parts.seed_runs.iter().map(|s| Digest(u128::from_str_radix(&s.fingerprint, 16).expect("fingerprints are checked when a run.json is read"))).collect();
        RunReport {
            scenario: ScenarioInfo {
                name: scenario.name.clone(),
                path: scenario.origin.name.clone(),
                description: scenario.description.clone(),
                source: scenario.origin.text.clone(),
            },
            commit: parts.commit,
            seeds: parts.seed_runs.iter().map(|s| s.seed).collect(),
            shard: parts.shard,
            threads: parts.threads,
            fingerprint: Fingerprint::combine(&digests).to_string(),
            nodes: parts.nodes,
            links: parts.links,
            events: parts.seed_runs.iter().map(|s| s.events).sum(),
            sim_seconds: parts.sim_seconds,
            wall_seconds: parts.wall.as_secs_f64(),
            peak_rss_bytes: peak_rss_bytes(),
            passed: assertions.iter().all(|a| a.passed),
            assertions,
            summary,
            warnings: rows
                .iter()
                .filter(|r| r.targets.is_empty())
                .map(|r| {
                    format!(
                        "seed {}: fault {:?} (faults[{}], injection {}) hit nothing: its target matched no node or link here",
                        r.seed, r.name, r.spec, r.instance
                    )
                })
                .collect(),
            loop_examples: parts.loop_examples,
            seed_runs: parts.seed_runs,
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
            ("honest nodes isolated", s.honest_isolated.to_string()),
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

/// Every fault of every seed as result rows, in seed order.
pub fn fault_rows(runs: &[(RunResult, Duration)]) -> Vec<FaultRow> {
    runs.iter().flat_map(|(r, _)| r.faults.iter().map(move |(f, o)| FaultRow::from_run(r.seed, f, o))).collect()
}
