//! The node's secret: 32 random bytes, kept in a file as hex. Post-quantum keys will be
//! derived from it; today it is mixed into the seed of the core's random stream.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum IdentityError {
    #[error("cannot read identity file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot create identity file {path}: {source}")]
    Create { path: PathBuf, source: std::io::Error },
    #[error("identity file {path} is not 64 hex digits (32 bytes); delete it to have a new identity made")]
    Malformed { path: PathBuf },
    #[error("the operating system has no randomness to offer: {0}")]
    Random(getrandom::Error),
}

/// Reads the identity at `path`, or makes a new one there (readable by its owner only).
pub fn load_or_create(path: &Path) -> Result<[u8; 32], IdentityError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(text.trim()).ok_or_else(|| IdentityError::Malformed { path: path.into() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = [0u8; 32];
            getrandom::fill(&mut secret).map_err(IdentityError::Random)?;
            let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
            let create = |source| IdentityError::Create { path: path.into(), source };
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(create)?;
            f.write_all(format!("{hex}\n").as_bytes()).map_err(create)?;
            Ok(secret)
        }
        Err(source) => Err(IdentityError::Read { path: path.into(), source }),
    }
}

fn parse(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}
