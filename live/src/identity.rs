//! The node's identity file: its ML-DSA-65 key pair, as hex lines.
//!
//! ```text
//! # x0tta6bl4 node identity (ML-DSA-65). Secret: keep this file mode 0600.
//! key_id: <64 hex digits, SHA-256 of the public key>
//! public: <3904 hex digits>
//! secret: <8064 hex digits>
//! ```
//!
//! Made on first run, readable by its owner only; a node refuses to start when the file is
//! readable or writable by anyone else, because then the identity is no longer its own.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use thiserror::Error;
use crate::keyfile::{self, hex};
use x0tta6bl4::pq::{self, CryptoRng, KeyError, SigningKey};

#[derive(Debug, Error)]
pub enum IdentityError {
    #[error("cannot read identity file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot create identity file {path}: {source}")]
    Create { path: PathBuf, source: std::io::Error },
    #[error(
        "identity file {path} has mode {mode:03o}: other users can read or change this node's secret key; \
         run `chmod 600 {path}` (and consider the key compromised if others did read it)"
    )]
    Exposed { path: PathBuf, mode: u32 },
    #[error("identity file {path}, line {line}: {problem}; delete the file to have a new identity made")]
    Malformed { path: PathBuf, line: usize, problem: String },
    #[error("identity file {path}: {source}; delete the file to have a new identity made")]
    BadKey { path: PathBuf, source: KeyError },
    #[error("the operating system has no randomness to offer: {0}")]
    Random(getrandom::Error),
}

/// A loaded identity, and 32 secret bytes derived from it that seed the node's random
/// stream together with fresh OS randomness.
pub struct Identity {
    pub key: SigningKey,
    pub secret_seed: [u8; 32],
}

/// A stream seeded from the operating system: for keys and signatures outside the
/// simulator, which need not be reproducible.
pub fn os_rng() -> Result<CryptoRng, IdentityError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(IdentityError::Random)?;
    Ok(CryptoRng::from_seed(seed))
}

/// Reads the identity at `path`, or makes a new one there (readable by its owner only).
pub fn load_or_create(path: &Path) -> Result<Identity, IdentityError> {
    let key = match load(path) {
        Ok(key) => key,
        Err(IdentityError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => create(path)?,
        Err(e) => return Err(e),
    };
    let secret_seed = pq::sha256(&key.secret_bytes()[..]);
    Ok(Identity { key, secret_seed })
}

/// Reads the key pair at `path`, refusing a file that others can read or change.
pub fn load(path: &Path) -> Result<SigningKey, IdentityError> {
    let read = |source| IdentityError::Read { path: path.into(), source };
    let mode = std::fs::metadata(path).map_err(read)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(IdentityError::Exposed { path: path.into(), mode });
    }
    parse(path, &std::fs::read_to_string(path).map_err(read)?)
}

/// Makes a new key pair at `path`, readable by its owner only; an existing file is an
/// error, never overwritten, since it may be the only copy of a key others trust.
pub fn create(path: &Path) -> Result<SigningKey, IdentityError> {
    let key = SigningKey::generate(&mut os_rng()?);
    let create = |source| IdentityError::Create { path: path.into(), source };
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(create)?;
    f.write_all(render(&key).as_bytes()).map_err(create)?;
    Ok(key)
}

fn render(key: &SigningKey) -> String {
    format!(
        "# x0tta6bl4 node identity (ML-DSA-65). Secret: keep this file mode 0600.\nkey_id: {}\npublic: {}\nsecret: {}\n",
        key.public().key_id().to_hex(),
        hex(&key.public().as_bytes()[..]),
        hex(&key.secret_bytes()[..]),
    )
}

fn parse(path: &Path, text: &str) -> Result<SigningKey, IdentityError> {
    let malformed = |(line, problem): (usize, String)| IdentityError::Malformed { path: path.into(), line, problem };
    let [key_id, public, secret] = keyfile::parse(text, ["key_id", "public", "secret"]).map_err(malformed)?;
    let (Some(public), Some(secret)) = (public, secret) else {
        return Err(malformed((keyfile::last_line(text), "needs both `public` and `secret` lines".into())));
    };
    let bad_key = |source| IdentityError::BadKey { path: path.into(), source };
    let key = SigningKey::from_bytes(&public.bytes, &secret.bytes, &mut os_rng()?).map_err(bad_key)?;
    if let Some(id) = key_id
        && id.bytes != key.public().key_id().0
    {
        return Err(malformed((id.line, "`key_id` is not the SHA-256 of `public`".into())));
    }
    Ok(key)
}
