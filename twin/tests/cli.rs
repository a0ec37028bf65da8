//! The `x0` binary as a user meets it: exit codes, output files, JSON field names, errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn x0(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_x0")).args(args).current_dir(dir).output().expect("x0 runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("x0-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

const SMALL: &str = "
name: small
seeds: 2
duration: 12s
warmup: 3s
topology:
  grid: { rows: 4, cols: 4 }
faults:
  - at: 5s
    duration: 2s
    crash: { highest_degree: 1 }
assertions:
  - mttd.p99 < 300ms
  - loops == 0
";

#[test]
fn run_writes_every_result_file_and_prints_the_fingerprint_last() {
    let dir = scratch("run");
    std::fs::write(dir.join("small.yaml"), SMALL).unwrap();
    let out = x0(&["run", "small.yaml", "--out", "res"], &dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let last = stdout.lines().last().expect("output");
    assert!(last.starts_with("fingerprint: ") && last.len() == "fingerprint: ".len() + 32, "{last}");
    for f in ["faults.parquet", "faults.csv", "summary.parquet", "summary.csv", "mttr.png", "run.json"] {
        let meta = std::fs::metadata(dir.join("res").join(f)).unwrap_or_else(|_| panic!("{f} missing"));
        assert!(meta.len() > 0, "{f} is empty");
    }
    let faults = std::fs::read_to_string(dir.join("res/faults.csv")).unwrap();
    assert_eq!(faults.lines().count(), 1 + 2, "a header and one row per fault per seed");
    let summary = std::fs::read_to_string(dir.join("res/summary.csv")).unwrap();
    assert!(summary.starts_with("metric,count,mean,p50,p95,p99,max"), "{summary}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn json_reports_the_stable_field_names() {
    let dir = scratch("json");
    std::fs::write(dir.join("small.yaml"), SMALL).unwrap();
    let out = x0(&["run", "small.yaml", "--json", "--seeds", "1", "--out", "res"], &dir);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    for field in ["nodes", "events", "sim_seconds", "wall_seconds", "peak_rss_bytes", "fingerprint", "summary", "assertions"] {
        assert!(v.get(field).is_some(), "missing {field}");
    }
    assert_eq!(v["nodes"], 16);
    assert_eq!(v["seeds"].as_array().map(Vec::len), Some(1));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_failed_assertion_exits_1_and_says_which() {
    let dir = scratch("fail");
    std::fs::write(dir.join("strict.yaml"), SMALL.replace("mttd.p99 < 300ms", "mttd.p99 < 1ms")).unwrap();
    let out = x0(&["run", "strict.yaml", "--out", "res"], &dir);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("mttd.p99 < 1ms") && stdout.contains("FAIL") && stdout.contains("1 assertion failed"), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_exits_2_with_the_position() {
    let dir = scratch("bad");
    std::fs::write(dir.join("typo.yaml"), SMALL.replace("warmup: 3s", "warmupp: 3s")).unwrap();
    for args in [&["run", "typo.yaml"][..], &["validate", "typo.yaml"][..]] {
        let out = x0(args, &dir);
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("typo.yaml:5:1") && stderr.contains("unknown field `warmupp`"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let out = x0(&["validate", "missing.yaml"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.yaml: cannot read the scenario"));
    let out = x0(&["run", "--threads", "0", "typo.yaml"], &dir);
    assert_eq!(out.status.code(), Some(2), "bad flags are errors too");
    // Checked before the run, not after it: a bad --out used to cost the whole run.
    std::fs::write(dir.join("small.yaml"), SMALL).unwrap();
    std::fs::write(dir.join("a-file"), "").unwrap();
    let out = x0(&["run", "small.yaml", "--out", "a-file"], &dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--out a-file: is a file, not a directory"), "{stderr}");
    // 4 × 10^9 LPs overflowed a u32 product, and asked for 32 GB of random-number state.
    let out = x0(&["bench", "phold", "--lps", "4000000000", "--events-per-lp", "4"], &dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("16000000000 initial events") && stderr.contains("lower one of them"), "{stderr}");
    let out = x0(&["bench", "phold", "--events", "0"], &dir);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn validate_and_topo() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = x0(&["validate", "scenarios/mesh-1000.yaml"], &repo);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok: mesh-1000"));
    let out = x0(&["topo", "grid:3x4", "--dot"], &repo);
    let dot = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && dot.starts_with("graph topology {") && dot.matches(" -- ").count() == 17, "{dot}");
    let out = x0(&["topo", "topologies/Abilene.graphml"], &repo);
    assert!(String::from_utf8_lossy(&out.stdout).contains("nodes 11, links 14"));
    let out = x0(&["topo", "grid:3"], &repo);
    assert_eq!(out.status.code(), Some(2));
    // Specs given here skip scenario loading; these panicked, allocated 79 GB, or built a
    // one-node ring linked to itself.
    for (spec, says) in [
        ("{random_geometric: {nodes: 10}}", "random_geometric needs exactly one of `radius` or `degree`"),
        ("grid:100000x100000", "grid is 100000x100000, 10000000000 nodes, expected 2 to 10000000"),
        ("ring:1", "ring.nodes is 1, expected 3 to 10000000"),
        ("barabasi_albert:5:9", "barabasi_albert.m is 9, expected 1 to nodes - 1"),
    ] {
        let out = x0(&["topo", spec], &repo);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{spec}: {stderr}");
        assert!(stderr.contains(says) && !stderr.contains("panicked"), "{spec}: {stderr}");
    }
}

/// The report fields that do not depend on wall time or on how the sweep was split.
fn comparable(report: &serde_json::Value) -> serde_json::Value {
    let mut v = report.clone();
    for key in ["wall_seconds", "peak_rss_bytes", "threads", "shard"] {
        v.as_object_mut().expect("object").remove(key);
    }
    for run in v["seed_runs"].as_array_mut().expect("seed_runs") {
        run.as_object_mut().expect("object").remove("wall_seconds");
    }
    v
}

#[test]
fn shards_merge_into_exactly_the_unsharded_sweep() {
    let dir = scratch("shard");
    std::fs::write(dir.join("small.yaml"), SMALL).unwrap();
    let whole = x0(&["run", "small.yaml", "--seeds", "5", "--threads", "1", "--json", "--out", "whole"], &dir);
    assert!(whole.status.success(), "{}", String::from_utf8_lossy(&whole.stderr));
    // Three shards of five seeds: sizes 2, 2 and 1, so uneven shards are covered.
    for i in 0..3 {
        let shard = format!("{i}/3");
        let out = x0(&["run", "small.yaml", "--seeds", "5", "--shard", &shard, "--out", &format!("s{i}")], &dir);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // Order of the directories must not matter.
    let merged = x0(&["merge", "s2", "s0", "s1", "--json", "--out", "merged"], &dir);
    assert!(merged.status.success(), "{}", String::from_utf8_lossy(&merged.stderr));
    let whole: serde_json::Value = serde_json::from_slice(&whole.stdout).unwrap();
    let merged: serde_json::Value = serde_json::from_slice(&merged.stdout).unwrap();
    assert_eq!(comparable(&whole), comparable(&merged));
    for f in ["faults.csv", "summary.csv"] {
        let a = std::fs::read_to_string(dir.join("whole").join(f)).unwrap();
        let b = std::fs::read_to_string(dir.join("merged").join(f)).unwrap();
        assert_eq!(a, b, "{f} differs between the whole sweep and the merged shards");
    }

    let twice = x0(&["merge", "s0", "s0"], &dir);
    assert_eq!(twice.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&twice.stderr).contains("appears in more than one directory"));
    let empty = x0(&["run", "small.yaml", "--seeds", "2", "--shard", "2/3"], &dir);
    assert_eq!(empty.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&empty.stderr).contains("has no seed"));
    let bad = x0(&["run", "small.yaml", "--shard", "3/3"], &dir);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("0 <= I < N"));
    let missing = x0(&["merge", "nowhere"], &dir);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nowhere/run.json"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The operator's path to a secure mesh: an anchor, a node key, a certificate from its key
/// id, checked by `show` and accepted by the daemon's own trust loading; a wrong anchor, a
/// bad key id and an overwrite are refused.
#[test]
fn keys_make_an_anchor_and_a_certificate_the_daemon_accepts() {
    let dir = scratch("keys");
    let ok = |args: &[&str]| {
        let out = x0(args, &dir);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "x0 {args:?}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        stdout
    };
    ok(&["keys", "new", "anchor.key"]);
    ok(&["keys", "anchor", "anchor.key", "--out", "anchor.pub"]);
    let made = ok(&["keys", "new", "n7.key"]);
    let key_id = made.lines().find_map(|l| l.strip_prefix("key id: ")).expect("key id printed").to_string();
    ok(&["keys", "certify", "--anchor-key", "anchor.key", "--node-id", "7", "--key-id", &key_id, "--valid-for", "30d", "--out", "n7.cert"]);
    let shown = ok(&["keys", "show", "n7.cert", "--anchor", "anchor.pub"]);
    assert!(shown.contains("signed by anchor") && shown.contains(": yes") && shown.contains(&key_id), "{shown}");

    let identity = x0_live::identity::load_or_create(&dir.join("n7.key")).expect("the key made above");
    let policy = x0_live::config::TrustConfig::Anchor { anchor: dir.join("anchor.pub"), certificate: dir.join("n7.cert") };
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let trust = x0_live::trust::build(&policy, x0tta6bl4::ids::NodeId(7), identity, now_s, false).expect("the daemon accepts it");
    assert_eq!(trust.node_id(), x0tta6bl4::ids::NodeId(7));

    ok(&["keys", "new", "other.key"]);
    ok(&["keys", "anchor", "other.key", "--out", "other.pub"]);
    let wrong = x0(&["keys", "show", "n7.cert", "--anchor", "other.pub"], &dir);
    assert_eq!(wrong.status.code(), Some(1), "another anchor's check fails");
    let bad_id = x0(&["keys", "certify", "--anchor-key", "anchor.key", "--node-id", "7", "--key-id", "7", "--out", "x.cert"], &dir);
    assert!(String::from_utf8_lossy(&bad_id.stderr).contains("expected 64 hex digits"));
    let expired = x0(&["keys", "certify", "--anchor-key", "anchor.key", "--node-id", "7", "--key-id", &key_id, "--valid-for", "0s", "--out", "x.cert"], &dir);
    assert_eq!(expired.status.code(), Some(2), "a certificate expired when written is refused");
    assert!(String::from_utf8_lossy(&expired.stderr).contains("--valid-for must be at least 1s"));
    assert!(!dir.join("x.cert").exists());
    let again = x0(&["keys", "new", "n7.key"], &dir);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwrites"));
    let _ = std::fs::remove_dir_all(&dir);
}
