//! The note of being alive that tells a restarted x0-node how long it was gone.

use std::time::Duration;
use x0_live::alive::{self, AliveNote};

#[test]
fn a_note_tells_the_next_start_how_long_the_node_was_gone() {
    let dir = std::env::temp_dir().join(format!("x0-alive-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = alive::path(&dir.join("node.key"));
    assert_eq!(path, dir.join("node.key.alive"));
    assert_eq!(alive::previous_run(&path), None, "no note: the node never ran here");

    let mut note = AliveNote::open(path.clone());
    note.write();
    // Just written: gone for no time (the note's interval is taken off, and it floors at 0).
    assert_eq!(alive::previous_run(&path), Some(Duration::ZERO));

    // A note from long ago (1 s after the epoch) says the node has been gone for decades.
    std::fs::write(&path, "1000\n").unwrap();
    assert!(alive::previous_run(&path).is_some_and(|d| d > Duration::from_secs(50 * 365 * 86_400)));
    // The next write overwrites it in place, wider than the old text.
    note.write();
    assert_eq!(alive::previous_run(&path), Some(Duration::ZERO));

    // A note that is not a number keeps the hold-down: counted as "just now".
    std::fs::write(&path, "yesterday\n").unwrap();
    assert_eq!(alive::previous_run(&path), Some(Duration::ZERO));
    std::fs::remove_dir_all(&dir).unwrap();
}
