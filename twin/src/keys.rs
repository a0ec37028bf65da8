//! `x0 keys`: the operator's key material for a mesh with link security. A trust anchor is
//! an ML-DSA-65 key pair kept offline; nodes get its public half (`security.anchor`) and a
//! certificate each (`security.certificate`) that binds their key to their node id until
//! an expiry. With an allowlist instead, `show` gives the key ids to list.
//!
//! ```text
//! x0 keys new anchor.key                      # the anchor's key pair, mode 0600
//! x0 keys anchor anchor.key --out anchor.pub  # its public half, for every node
//! x0 keys certify --anchor-key anchor.key --node-id 7 --key-id <hex> --out n7.cert
//! x0 keys show n7.cert --anchor anchor.pub    # what a file holds; checks the signature
//! ```

use crate::out::outln;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use x0_live::identity;
use x0_live::trust::{self, KeyFile};
use x0tta6bl4::ids::NodeId;
use x0tta6bl4::pq::KeyId;
use x0tta6bl4::secure::Certificate;

#[derive(clap::Subcommand)]
pub enum KeysCommand {
    /// Make an ML-DSA-65 key pair in a new file (mode 0600): a node's identity, made before
    /// its first start, or a trust anchor's signing key. Never overwrites a file.
    New {
        /// The key file to create.
        file: PathBuf,
    },
    /// Write the trust anchor's public key, the file nodes name in `security.anchor`.
    Anchor {
        /// The anchor's key pair (from `x0 keys new`).
        key: PathBuf,
        /// The public anchor file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Certify a node's key as its node id until an expiry, signed with the anchor's key.
    Certify(CertifyArgs),
    /// Say what a key, anchor or certificate file holds; with --anchor, check that the anchor
    /// signed a certificate and that it has not expired (exit status 1 if not).
    Show {
        file: PathBuf,
        /// The trust anchor's public file, to check a certificate against.
        #[arg(long)]
        anchor: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
pub struct CertifyArgs {
    /// The anchor's key pair (from `x0 keys new`).
    #[arg(long, value_name = "KEY_FILE")]
    pub anchor_key: PathBuf,
    /// The node id the certificate gives the key (the node's `node_id`; below 2^31).
    #[arg(long)]
    pub node_id: u32,
    /// The node's key id: 64 hex digits, logged by x0-node at start and printed by `x0 keys show`.
    #[arg(long, required_unless_present = "key", conflicts_with = "key")]
    pub key_id: Option<String>,
    /// Or the node's key file (its identity, or any file with its public key).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// How long the certificate is valid from now, like 90d or 12h.
    #[arg(long, default_value = "365d", value_parser = parse_duration)]
    pub valid_for: Duration,
    /// The certificate file to write.
    #[arg(long)]
    pub out: PathBuf,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    x0tta6bl4::units::parse_duration(s).map_err(|e| e.to_string())
}

pub fn keys(cmd: &KeysCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        KeysCommand::New { file } => {
            let key = identity::create(file).map_err(|e| match e {
                identity::IdentityError::Create { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists => {
                    anyhow::anyhow!("{} already exists; `x0 keys new` never overwrites a key: remove the file first if it really is to go", file.display())
                }
                e => e.into(),
            })?;
            let id = key.public().key_id();
            outln!("made {} (ML-DSA-65 key pair, mode 600)", file.display());
            outln!("key id: {}", id.to_hex());
            outln!("node id under an allowlist: {}", id.node_id().0);
        }
        KeysCommand::Anchor { key, out } => {
            let key = pair(key)?;
            trust::write_anchor(out, key.public())?;
            outln!("wrote {}: trust anchor with key id {}", out.display(), key.public().key_id().to_hex());
        }
        KeysCommand::Certify(args) => certify(args)?,
        KeysCommand::Show { file, anchor } => return show(file, anchor.as_deref()),
    }
    Ok(ExitCode::SUCCESS)
}

/// A key pair file, or an error saying which file it has to be.
fn pair(path: &Path) -> anyhow::Result<x0tta6bl4::pq::SigningKey> {
    match trust::read_any(path)? {
        KeyFile::Pair(key) => Ok(key),
        KeyFile::Public(_) => bail!("{} holds only a public key; give the key pair made by `x0 keys new`", path.display()),
        KeyFile::Certificate(_) => bail!("{} is a certificate; give the key pair made by `x0 keys new`", path.display()),
    }
}

fn certify(args: &CertifyArgs) -> anyhow::Result<()> {
    let node = NodeId(args.node_id);
    if args.node_id > 0x7FFF_FFFF {
        bail!("--node-id {}: node ids are below 2^31 (2147483648); ids with the top bit set name areas", args.node_id);
    }
    // Validity counts in whole seconds: anything shorter made a certificate that had
    // expired by the time it was written.
    if args.valid_for.as_secs() == 0 {
        bail!("--valid-for must be at least 1s; a certificate is valid from now until then");
    }
    let key = match (&args.key_id, &args.key) {
        (Some(hex), _) => KeyId::from_hex(hex.trim())
            .with_context(|| format!("--key-id `{hex}` is not a key id: expected 64 hex digits"))?,
        (None, Some(path)) => match trust::read_any(path)? {
            KeyFile::Pair(key) => key.public().key_id(),
            KeyFile::Public(key) => key.key_id(),
            KeyFile::Certificate(_) => bail!("--key {} is a certificate; give the node's key file or --key-id", path.display()),
        },
        (None, None) => bail!("give the node's key as --key-id HEX or --key FILE"),
    };
    let anchor = pair(&args.anchor_key)?;
    let not_after_s = now_s().saturating_add(args.valid_for.as_secs());
    let cert = Certificate::issue(&anchor, &mut identity::os_rng()?, node, key, not_after_s);
    trust::write_certificate(&args.out, &cert)?;
    outln!(
        "wrote {}: node {} is key {} until unix time {not_after_s} ({} from now), signed by anchor {}",
        args.out.display(),
        node.0,
        key.to_hex(),
        days(args.valid_for.as_secs()),
        anchor.public().key_id().to_hex()
    );
    Ok(())
}

fn show(path: &Path, anchor: Option<&Path>) -> anyhow::Result<ExitCode> {
    let anchor = anchor.map(trust::read_anchor).transpose()?;
    let public = match trust::read_any(path)? {
        KeyFile::Pair(key) => {
            outln!("{}: ML-DSA-65 key pair (a node's identity or an anchor's key)", path.display());
            key.public().clone()
        }
        KeyFile::Public(key) => {
            outln!("{}: trust anchor (ML-DSA-65 public key)", path.display());
            key
        }
        KeyFile::Certificate(cert) => {
            let now = now_s();
            outln!("{}: certificate", path.display());
            outln!("node id: {}", cert.node.0);
            outln!("key id: {}", cert.key.to_hex());
            let state = if cert.not_after_s < now {
                format!("expired {} ago", days(now - cert.not_after_s))
            } else {
                format!("{} left", days(cert.not_after_s - now))
            };
            outln!("valid until: unix time {} ({state})", cert.not_after_s);
            let Some(anchor) = anchor else { return Ok(ExitCode::SUCCESS) };
            let signed = cert.is_signed_by(&anchor);
            outln!("signed by anchor {}: {}", anchor.key_id().to_hex(), if signed { "yes" } else { "NO" });
            return Ok(if signed && cert.not_after_s >= now { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
    };
    let id = public.key_id();
    outln!("key id: {}", id.to_hex());
    outln!("node id under an allowlist: {}", id.node_id().0);
    if anchor.is_some() {
        bail!("--anchor checks a certificate, and {} is not one", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn days(s: u64) -> String {
    format!("{:.1} days", s as f64 / 86_400.0)
}

/// Unix time, the clock certificate expiry is judged on (`x0_live::daemon::unix_nanos`).
fn now_s() -> u64 {
    x0_live::daemon::unix_nanos() / 1_000_000_000
}
