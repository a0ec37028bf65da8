//! The note of being alive beside a node's identity (`<identity>.alive`): Unix
//! milliseconds of the last moment the daemon was known to run. The next start reads it to
//! tell the core how long the node was gone (`Node::set_previous_run`), which decides
//! whether it must hold its routes down after booting.

use crate::daemon::unix_nanos;
use std::time::Duration;
use tracing::warn;

/// How often the daemon notes that it is alive, in the file beside its identity; the
/// next start learns from it how long the node was gone (`Node::set_previous_run`). The
/// hold-down it decides on has a 45 s horizon (by default), so seconds are plenty. Opening
/// and rewriting the file every second measured 0.182 cores for 49 daemons in `x0 bench
/// peer`, against 0.156 without notes (one run each).
pub const NOTE_INTERVAL: Duration = Duration::from_secs(5);

/// `<identity file>.alive`: Unix milliseconds of the last moment this node was known alive.
pub fn path(identity: &std::path::Path) -> std::path::PathBuf {
    let mut p = identity.as_os_str().to_owned();
    p.push(".alive");
    p.into()
}

/// How long ago the previous process on this identity was last alive, from its note:
/// `None` if there is no note (the node never ran here). A note that cannot be read counts
/// as "just now", which keeps the boot hold-down: the safe side.
pub fn previous_run(path: &std::path::Path) -> Option<Duration> {
    let text = match std::fs::read_to_string(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            warn!(file = %path.display(), "reading the previous run's note: {e}; keeping the boot hold-down");
            return Some(Duration::ZERO);
        }
        Ok(t) => t,
    };
    let Ok(ms) = text.trim().parse::<u64>() else {
        warn!(file = %path.display(), "the previous run's note is not Unix milliseconds; keeping the boot hold-down");
        return Some(Duration::ZERO);
    };
    // The note may be up to one interval older than the process's last moment.
    let gone_ms = (unix_nanos() / 1_000_000).saturating_sub(ms);
    Some(Duration::from_millis(gone_ms).saturating_sub(NOTE_INTERVAL))
}

/// The note of being alive, kept open: each note overwrites the last in place, with a
/// fixed width so the file never needs truncating.
pub struct AliveNote {
    path: std::path::PathBuf,
    file: Option<std::fs::File>,
    failed: bool,
}

impl AliveNote {
    pub fn open(path: std::path::PathBuf) -> AliveNote {
        let file = std::fs::OpenOptions::new().create(true).write(true).truncate(true).open(&path);
        let mut note = AliveNote { path, file: None, failed: false };
        match file {
            Ok(f) => note.file = Some(f),
            Err(e) => note.failed(e),
        }
        note
    }

    /// Notes that the node is alive now.
    pub fn write(&mut self) {
        use std::os::unix::fs::FileExt;
        let Some(file) = &self.file else { return };
        let text = format!("{:>20}\n", unix_nanos() / 1_000_000);
        if let Err(e) = file.write_all_at(text.as_bytes(), 0) {
            self.failed(e);
        }
    }

    /// Reported once per run, not at every note.
    fn failed(&mut self, e: std::io::Error) {
        if !std::mem::replace(&mut self.failed, true) {
            warn!(file = %self.path.display(), "noting that the node is alive: {e}; its next start will hold its routes down");
        }
    }
}
