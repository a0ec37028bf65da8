//! Result files: one row per fault per seed, one row per metric, and the run report.
//! Parquet for notebooks and merging, CSV for everything else.

use crate::report::RunReport;
use anyhow::Context;
use polars::prelude::*;
use std::fs::File;
use std::path::Path;
use std::time::Duration;
use x0_sim::RunResult;
use x0tta6bl4::metrics::{FaultOutcome, FaultRecord, Stats};

/// A column named `$name` with `$f` applied to every row.
macro_rules! column {
    ($rows:ident, $name:literal, $f:expr) => {
        Column::new($name.into(), $rows.iter().map($f).collect::<Vec<_>>())
    };
}

fn ms(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64() * 1e3)
}

/// What a fault hit, as text: node ids, or links as `a-b`.
fn targets(f: &FaultRecord) -> String {
    let nodes = f.nodes.iter().map(|n| n.0.to_string());
    let links = f.links.iter().map(|(a, b)| format!("{}-{}", a.0, b.0));
    nodes.chain(links).collect::<Vec<_>>().join(" ")
}

/// One row per fault injection per seed.
pub fn faults_frame(runs: &[(RunResult, Duration)]) -> PolarsResult<DataFrame> {
    let rows: Vec<(u64, &FaultRecord, &FaultOutcome)> =
        runs.iter().flat_map(|(r, _)| r.faults.iter().map(move |(f, o)| (r.seed, f, o))).collect();
    DataFrame::new(
        rows.len(),
        vec![
            column!(rows, "seed", |r| r.0),
            column!(rows, "fault", |r| r.1.name.clone()),
            column!(rows, "kind", |r| r.1.kind.to_string()),
            column!(rows, "spec", |r| r.1.spec),
            column!(rows, "instance", |r| r.1.instance),
            column!(rows, "targets", |r| targets(r.1)),
            column!(rows, "t_inject_ms", |r| r.1.t_inject.as_secs_f64() * 1e3),
            column!(rows, "t_heal_ms", |r| r.1.t_heal.map(|t| t.as_secs_f64() * 1e3)),
            column!(rows, "mttd_ms", |r| ms(r.2.mttd(r.1))),
            column!(rows, "mttr_ms", |r| ms(r.2.mttr(r.1))),
            column!(rows, "steady_ms", |r| ms(r.2.steady(r.1))),
            column!(rows, "disrupted_pairs", |r| r.2.disrupted_pairs),
            column!(rows, "unrecovered_pairs", |r| r.2.unrecovered_pairs),
            column!(rows, "probes_sent", |r| r.2.probes_sent),
            column!(rows, "probes_lost", |r| r.2.probes_lost),
            column!(rows, "probe_loss", |r| (r.2.probes_sent > 0)
                .then(|| f64::from(r.2.probes_lost) / f64::from(r.2.probes_sent))),
            column!(rows, "false_positives", |r| r.2.false_positives),
        ],
    )
}

/// One row per metric, in milliseconds.
pub fn summary_frame(report: &RunReport) -> PolarsResult<DataFrame> {
    let s = &report.summary;
    let metrics: [(&str, &Stats); 3] = [("mttd", &s.mttd), ("mttr", &s.mttr), ("steady", &s.steady)];
    let pick = |f: fn(&Stats) -> f64| metrics.iter().map(|(_, st)| (st.count > 0).then(|| f(st))).collect::<Vec<_>>();
    DataFrame::new(
        metrics.len(),
        vec![
            Column::new("metric".into(), metrics.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>()),
            Column::new("count".into(), metrics.iter().map(|(_, st)| st.count).collect::<Vec<u64>>()),
            Column::new("mean".into(), pick(|s| s.mean)),
            Column::new("p50".into(), pick(|s| s.p50)),
            Column::new("p95".into(), pick(|s| s.p95)),
            Column::new("p99".into(), pick(|s| s.p99)),
            Column::new("max".into(), pick(|s| s.max)),
        ],
    )
}

fn write_pair(dir: &Path, stem: &str, df: &mut DataFrame) -> anyhow::Result<()> {
    let parquet = dir.join(format!("{stem}.parquet"));
    let file = File::create(&parquet).with_context(|| format!("creating {}", parquet.display()))?;
    ParquetWriter::new(file).finish(df).map_err(anyhow::Error::from).with_context(|| format!("writing {}", parquet.display()))?;
    let csv = dir.join(format!("{stem}.csv"));
    let file = File::create(&csv).with_context(|| format!("creating {}", csv.display()))?;
    CsvWriter::new(file)
        .include_header(true)
        .finish(df)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("writing {}", csv.display()))?;
    Ok(())
}

pub fn write_all(dir: &Path, runs: &[(RunResult, Duration)], report: &RunReport) -> anyhow::Result<()> {
    write_pair(dir, "faults", &mut faults_frame(runs)?)?;
    write_pair(dir, "summary", &mut summary_frame(report)?)?;
    let json = dir.join("run.json");
    std::fs::write(&json, serde_json::to_string_pretty(report)? + "\n").with_context(|| format!("writing {}", json.display()))?;
    Ok(())
}

/// Every node event after warmup, flattened: one row per event.
pub fn events_frame(runs: &[(RunResult, Duration)]) -> PolarsResult<DataFrame> {
    use x0tta6bl4::node::{Event, Incident, NeighbourState};
    struct Row {
        seed: u64,
        t_ms: f64,
        node: u32,
        event: &'static str,
        detail: &'static str,
        peer: Option<u32>,
        dest: Option<u32>,
        next_hop: Option<u32>,
        previous: Option<u32>,
        metric: Option<u32>,
    }
    let mut rows = Vec::new();
    for (r, _) in runs {
        for e in &r.trace.events {
            let mut row = Row {
                seed: r.seed,
                t_ms: e.t.as_secs_f64() * 1e3,
                node: e.node.0,
                event: "",
                detail: "",
                peer: None,
                dest: None,
                next_hop: None,
                previous: None,
                metric: None,
            };
            match e.event {
                Event::Neighbour { peer, state, .. } => {
                    row.event = "neighbour";
                    row.detail = match state {
                        NeighbourState::Up => "up",
                        NeighbourState::Suspected => "suspected",
                        NeighbourState::Down => "down",
                    };
                    row.peer = Some(peer.0);
                }
                Event::Route { dest, next_hop, previous, metric, .. } => {
                    row.event = "route";
                    row.dest = Some(dest.0);
                    row.next_hop = next_hop.map(|n| n.0);
                    row.previous = previous.map(|n| n.0);
                    row.metric = Some(u32::from(metric));
                }
                Event::Incident { incident, .. } => {
                    row.event = "incident";
                    match incident {
                        Incident::Starved { dest } => (row.detail, row.dest) = ("starved", Some(dest.0)),
                        Incident::NeighbourRestarted { peer, .. } => (row.detail, row.peer) = ("neighbour_restarted", Some(peer.0)),
                        Incident::TtlExpired { src, dst } => {
                            (row.detail, row.peer, row.dest) = ("ttl_expired", Some(src.0), Some(dst.0))
                        }
                    }
                }
                // Probe outcomes are in probes.parquet, with their pair and send time.
                Event::Probe { .. } => continue,
            }
            rows.push(row);
        }
    }
    DataFrame::new(
        rows.len(),
        vec![
            column!(rows, "seed", |r| r.seed),
            column!(rows, "t_ms", |r| r.t_ms),
            column!(rows, "node", |r| r.node),
            column!(rows, "event", |r| r.event.to_string()),
            column!(rows, "detail", |r| r.detail.to_string()),
            column!(rows, "peer", |r| r.peer),
            column!(rows, "dest", |r| r.dest),
            column!(rows, "next_hop", |r| r.next_hop),
            column!(rows, "previous", |r| r.previous),
            column!(rows, "metric", |r| r.metric),
        ],
    )
}

/// Every probe of every sampled pair: when, between whom, whether judged, whether it came back.
pub fn probes_frame(runs: &[(RunResult, Duration)]) -> PolarsResult<DataFrame> {
    let rows: Vec<_> = runs
        .iter()
        .flat_map(|(r, _)| r.trace.probes.iter().map(move |p| (r.seed, p, r.trace.pairs[p.pair as usize])))
        .collect();
    DataFrame::new(
        rows.len(),
        vec![
            column!(rows, "seed", |r| r.0),
            column!(rows, "sent_ms", |r| r.1.sent.as_secs_f64() * 1e3),
            column!(rows, "pair", |r| r.1.pair),
            column!(rows, "src", |r| r.2.0.0),
            column!(rows, "dst", |r| r.2.1.0),
            column!(rows, "judged", |r| r.1.path),
            column!(rows, "ok", |r| r.1.ok),
        ],
    )
}

/// `events` and `probes` Parquet+CSV, for `x0 run --trace`.
pub fn write_trace(dir: &Path, runs: &[(RunResult, Duration)]) -> anyhow::Result<()> {
    write_pair(dir, "events", &mut events_frame(runs)?)?;
    write_pair(dir, "probes", &mut probes_frame(runs)?)
}
