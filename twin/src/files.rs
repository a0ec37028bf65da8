//! Result files: one row per fault per seed, one row per metric, and the run report.
//! Parquet for notebooks and merging, CSV for everything else.

use crate::report::{FaultRow, RunReport};
use anyhow::Context;
use polars::prelude::*;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;
use x0_sim::RunResult;
use x0tta6bl4::eventlog::{Detail, EventRecord, Kind};
use x0tta6bl4::metrics::Stats;

/// A column named `$name` with `$f` applied to every row.
macro_rules! column {
    ($rows:ident, $name:literal, $f:expr) => {
        Column::new($name.into(), $rows.iter().map($f).collect::<Vec<_>>())
    };
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Back from the milliseconds the files hold to nanoseconds: exact below 2^53 ns (104 days).
fn ns(ms: f64) -> u64 {
    (ms * 1e6).round() as u64
}

/// An output directory that exists and takes files: only [`prepare_out`] makes one, and
/// writing a run's results needs one.
pub struct OutDir(PathBuf);

impl OutDir {
    pub fn path(&self) -> &Path {
        &self.0
    }
}

/// Creates the output directory `out` and checks that files can be written in it, before
/// a run that may take minutes: found only when the results were written, a bad `--out`
/// lost them.
pub fn prepare_out(out: &Path) -> anyhow::Result<OutDir> {
    if out.exists() && !out.is_dir() {
        anyhow::bail!("--out {}: is a file, not a directory; name a directory for the results", out.display());
    }
    std::fs::create_dir_all(out).with_context(|| format!("--out {}: cannot create the directory", out.display()))?;
    let check = out.join(".x0-write-check");
    std::fs::write(&check, b"").with_context(|| format!("--out {}: cannot write in the directory", out.display()))?;
    std::fs::remove_file(&check).with_context(|| format!("removing {}", check.display()))?;
    Ok(OutDir(out.to_path_buf()))
}

/// One row per fault injection per seed.
pub fn faults_frame(rows: &[FaultRow]) -> PolarsResult<DataFrame> {
    DataFrame::new(
        rows.len(),
        vec![
            column!(rows, "seed", |r| r.seed),
            column!(rows, "fault", |r| r.name.clone()),
            column!(rows, "kind", |r| r.kind.clone()),
            column!(rows, "spec", |r| r.spec),
            column!(rows, "instance", |r| r.instance),
            column!(rows, "targets", |r| r.targets.clone()),
            column!(rows, "failure", |r| r.failure),
            column!(rows, "node_fault", |r| r.node_fault),
            column!(rows, "t_inject_ms", |r| ms(r.t_inject_ns)),
            column!(rows, "t_heal_ms", |r| r.t_heal_ns.map(ms)),
            column!(rows, "mttd_ms", FaultRow::mttd_ms),
            column!(rows, "mttr_ms", FaultRow::mttr_ms),
            column!(rows, "steady_ms", FaultRow::steady_ms),
            column!(rows, "disrupted_pairs", |r| r.disrupted_pairs),
            column!(rows, "unrecovered_pairs", |r| r.unrecovered_pairs),
            column!(rows, "probes_sent", |r| r.probes_sent),
            column!(rows, "probes_lost", |r| r.probes_lost),
            column!(rows, "probe_loss", |r| (r.probes_sent > 0)
                .then(|| f64::from(r.probes_lost) / f64::from(r.probes_sent))),
            column!(rows, "false_positives", |r| r.false_positives),
        ],
    )
}

/// Reads a faults.parquet that `x0 run` wrote back into rows.
pub fn read_faults(path: &Path) -> anyhow::Result<Vec<FaultRow>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    // Every polars error names the file, so a user merging many shards knows which one is bad.
    let bad = |e: PolarsError| anyhow::anyhow!("{}: {e} (was it written by `x0 run`?)", path.display());
    let df = ParquetReader::new(file).finish().map_err(bad)?;
    let col = |name: &str| df.column(name).map_err(bad);
    let u64s = |name: &str| -> anyhow::Result<Vec<Option<u64>>> { Ok(col(name)?.u64().map_err(bad)?.iter().collect()) };
    let u32s = |name: &str| -> anyhow::Result<Vec<Option<u32>>> { Ok(col(name)?.u32().map_err(bad)?.iter().collect()) };
    let f64s = |name: &str| -> anyhow::Result<Vec<Option<f64>>> { Ok(col(name)?.f64().map_err(bad)?.iter().collect()) };
    let strs = |name: &str| -> anyhow::Result<Vec<String>> {
        Ok(col(name)?.str().map_err(bad)?.iter().map(|s| s.unwrap_or_default().to_string()).collect())
    };
    let bools = |name: &str| -> anyhow::Result<Vec<Option<bool>>> { Ok(col(name)?.bool().map_err(bad)?.iter().collect()) };
    let (seed, fault, kind, spec, instance, targets) =
        (u64s("seed")?, strs("fault")?, strs("kind")?, u32s("spec")?, u32s("instance")?, strs("targets")?);
    let (failure, node_fault) = (bools("failure")?, bools("node_fault")?);
    let (inject, heal, mttd, mttr, steady) =
        (f64s("t_inject_ms")?, f64s("t_heal_ms")?, f64s("mttd_ms")?, f64s("mttr_ms")?, f64s("steady_ms")?);
    let (disrupted, unrecovered, sent, lost, fp) = (
        u32s("disrupted_pairs")?,
        u32s("unrecovered_pairs")?,
        u32s("probes_sent")?,
        u32s("probes_lost")?,
        u32s("false_positives")?,
    );
    let missing = || anyhow::anyhow!("{}: a required value is null", path.display());
    (0..df.height())
        .map(|i| {
            let t_inject_ns = ns(inject[i].ok_or_else(missing)?);
            let after = |d: Option<f64>| d.map(|d| t_inject_ns + ns(d));
            Ok(FaultRow {
                seed: seed[i].ok_or_else(missing)?,
                name: fault[i].clone(),
                kind: kind[i].clone(),
                spec: spec[i].ok_or_else(missing)?,
                instance: instance[i].ok_or_else(missing)?,
                targets: targets[i].clone(),
                failure: failure[i].ok_or_else(missing)?,
                node_fault: node_fault[i].ok_or_else(missing)?,
                t_inject_ns,
                t_heal_ns: heal[i].map(ns),
                t_detect_ns: after(mttd[i]),
                t_reroute_ns: after(mttr[i]),
                t_steady_ns: after(steady[i]),
                disrupted_pairs: disrupted[i].ok_or_else(missing)?,
                unrecovered_pairs: unrecovered[i].ok_or_else(missing)?,
                probes_sent: sent[i].ok_or_else(missing)?,
                probes_lost: lost[i].ok_or_else(missing)?,
                false_positives: fp[i].ok_or_else(missing)?,
            })
        })
        .collect()
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

pub fn write_all(dir: &Path, rows: &[FaultRow], report: &RunReport) -> anyhow::Result<()> {
    write_pair(dir, "faults", &mut faults_frame(rows)?)?;
    write_pair(dir, "summary", &mut summary_frame(report)?)?;
    let json = dir.join("run.json");
    std::fs::write(&json, serde_json::to_string_pretty(report)? + "\n").with_context(|| format!("writing {}", json.display()))?;
    Ok(())
}

/// Every node event after warmup, flattened: one row per event, the fields of
/// [`EventRecord`] (what `x0-node` streams), with time in milliseconds.
pub fn events_frame(runs: &[(RunResult, Duration)]) -> PolarsResult<DataFrame> {
    // Probe outcomes are in probes.parquet, with their pair and send time.
    let rows: Vec<(u64, EventRecord)> = runs
        .iter()
        .flat_map(|(r, _)| r.trace.events.iter().map(move |e| (r.seed, EventRecord::from(e))))
        .filter(|(_, e)| e.event != Kind::Probe)
        .collect();
    DataFrame::new(
        rows.len(),
        vec![
            column!(rows, "seed", |r| r.0),
            column!(rows, "t_ms", |r| ms(r.1.t_ns)),
            column!(rows, "node", |r| r.1.node),
            column!(rows, "event", |r| r.1.event.as_str().to_string()),
            column!(rows, "detail", |r| r.1.detail.map_or("", Detail::as_str).to_string()),
            column!(rows, "peer", |r| r.1.peer),
            column!(rows, "dest", |r| r.1.dest),
            column!(rows, "next_hop", |r| r.1.next_hop),
            column!(rows, "previous", |r| r.1.previous),
            column!(rows, "metric", |r| r.1.metric.map(u32::from)),
            column!(rows, "iface", |r| r.1.iface.map(u32::from)),
            column!(rows, "addr", |r| r.1.addr.clone()),
            column!(rows, "misbehaviour", |r| r.1.misbehaviour.map(|m| m.label().to_string())),
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
