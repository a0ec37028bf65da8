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
    macro_rules! column {
        ($name:literal, $f:expr) => {
            Column::new($name.into(), rows.iter().map($f).collect::<Vec<_>>())
        };
    }
    DataFrame::new(
        rows.len(),
        vec![
            column!("seed", |r| r.0),
            column!("fault", |r| r.1.name.clone()),
            column!("kind", |r| r.1.kind.to_string()),
            column!("spec", |r| r.1.spec),
            column!("instance", |r| r.1.instance),
            column!("targets", |r| targets(r.1)),
            column!("t_inject_ms", |r| r.1.t_inject.as_secs_f64() * 1e3),
            column!("t_heal_ms", |r| r.1.t_heal.map(|t| t.as_secs_f64() * 1e3)),
            column!("mttd_ms", |r| ms(r.2.mttd(r.1))),
            column!("mttr_ms", |r| ms(r.2.mttr(r.1))),
            column!("steady_ms", |r| ms(r.2.steady(r.1))),
            column!("disrupted_pairs", |r| r.2.disrupted_pairs),
            column!("unrecovered_pairs", |r| r.2.unrecovered_pairs),
            column!("probes_sent", |r| r.2.probes_sent),
            column!("probes_lost", |r| r.2.probes_lost),
            column!("probe_loss", |r| (r.2.probes_sent > 0)
                .then(|| f64::from(r.2.probes_lost) / f64::from(r.2.probes_sent))),
            column!("false_positives", |r| r.2.false_positives),
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
