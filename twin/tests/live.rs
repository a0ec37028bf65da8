//! `x0 live` on the shipped live-crash scenario: eight x0-node processes in network
//! namespaces, a real crash (SIGKILL) and a real link failure (`ip link set down`), measured
//! with the simulator's definitions into the same report. Needs root; skips, saying so,
//! without it.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn live_crash_runs_on_a_namespace_mesh_and_reports_like_the_simulator() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: x0 live needs root to create network namespaces (CI runs it as root)");
        return;
    }
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::env::temp_dir().join(format!("x0-live-{}", std::process::id()));
    let child = Command::new(env!("CARGO_BIN_EXE_x0"))
        .args(["live", "scenarios/live-crash.yaml", "--json", "--out"])
        .arg(&out)
        .current_dir(&repo)
        .output()
        .expect("x0 runs");
    let stderr = String::from_utf8_lossy(&child.stderr);
    assert!(child.status.success(), "x0 live failed ({}):\n{stderr}", child.status);
    let report: serde_json::Value = serde_json::from_slice(&child.stdout).expect("--json prints the report");
    assert_eq!(report["nodes"], 8);
    assert_eq!(report["summary"]["faults"], 2, "{report:#}");
    assert_eq!(report["summary"]["detected"], 2, "both faults are seen by a neighbour: {report:#}");
    assert_eq!(report["summary"]["false_positives"], 0);
    assert!(report["summary"]["probe_success"].as_f64().is_some_and(|p| p > 0.9), "{report:#}");
    assert_eq!(report["passed"], true);
    let warnings = report["warnings"].as_array().expect("warnings");
    assert!(warnings.iter().any(|w| w.as_str().is_some_and(|w| w.contains("not measured"))), "{warnings:?}");
    for file in ["run.json", "faults.parquet", "faults.csv", "summary.parquet", "mttr.png"] {
        assert!(out.join(file).exists(), "{file} missing");
    }
    let left = Command::new("ip").args(["netns", "list"]).output().expect("ip runs");
    let left = String::from_utf8_lossy(&left.stdout);
    assert!(!left.lines().any(|l| l.starts_with("x0-live-")), "namespaces left behind:\n{left}");
    let _ = std::fs::remove_dir_all(&out);
}
