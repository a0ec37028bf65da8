//! Bad input gets one clear error naming the file, the position and the fix, never a panic.
//! The corpus is data: each file in tests/data/bad/ says what its error must contain in
//! `# expect:` lines.

// Tests read and write files; the IO ban in clippy.toml is for the core library in src/.
#![allow(clippy::disallowed_methods)]

mod common;

fn expectations(path: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("readable");
    text.lines().filter_map(|l| l.trim().strip_prefix("# expect:")).map(|e| e.trim().to_string()).collect()
}

#[test]
fn every_bad_scenario_gets_its_error() {
    let dir = common::data("bad");
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir).expect("tests/data/bad exists").map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        let expect = expectations(&path);
        assert!(!expect.is_empty(), "{} has no `# expect:` line", path.display());
        let outcome = std::panic::catch_unwind(|| x0_sim::load(&path));
        let err = match outcome {
            Err(_) => panic!("{} made the loader panic", path.display()),
            Ok(Ok(_)) => panic!("{} was accepted", path.display()),
            Ok(Err(e)) => e.to_string(),
        };
        for e in &expect {
            assert!(err.contains(e.as_str()), "{}: error does not contain {e:?}:\n{err}", path.display());
        }
        checked += 1;
    }
    assert!(checked >= 15, "the corpus shrank to {checked} files");
}

#[test]
fn a_missing_scenario_file_is_named() {
    let err = x0_sim::load(std::path::Path::new("scenarios/does-not-exist.yaml")).expect_err("refused");
    let msg = err.to_string();
    assert!(msg.contains("scenarios/does-not-exist.yaml") && msg.contains("cannot read the scenario"), "{msg}");
}

/// Every shipped scenario is valid, so the corpus above tests errors, not typos of ours.
#[test]
fn every_shipped_scenario_validates() {
    for entry in std::fs::read_dir(common::repo().join("scenarios")).expect("scenarios/") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            common::load(&path);
        }
    }
}
