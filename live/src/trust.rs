//! Trust material on disk: the trust anchor's public key and a node's certificate, in the
//! key file format (`crate::keyfile`), and the `Trust` a daemon builds from them.
//!
//! ```text
//! # x0tta6bl4 trust anchor (ML-DSA-65 public key)
//! key_id: <64 hex digits>
//! public: <3904 hex digits>
//!
//! # x0tta6bl4 certificate for node 7 with key 3f0c…, valid until unix time 1767225600
//! certificate: <hex of node id | key id | not_after_s | anchor's signature>
//! ```

use crate::config::TrustConfig;
use crate::identity::{self, Identity, IdentityError};
use crate::keyfile::{self, hex};
use std::path::{Path, PathBuf};
use thiserror::Error;
use x0tta6bl4::ids::NodeId;
use x0tta6bl4::pq::{PublicKey, SigningKey};
use x0tta6bl4::secure::{Certificate, Trust, TrustPolicy};

#[derive(Debug, Error)]
pub enum TrustError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path}, line {line}: {problem}")]
    Malformed { path: PathBuf, line: usize, problem: String },
    #[error(
        "{path} certifies node {cert_node} with key {cert_key}, but this node is {node} with key {key}; \
         have the anchor certify this node's key (its key id is logged at start)"
    )]
    NotOurs { path: PathBuf, cert_node: u32, cert_key: String, node: u32, key: String },
    #[error(
        "node_id is {configured}, but with an allowlist a node's id is derived from its key: \
         set `node_id: {derived}` (key {key})"
    )]
    IdNotDerived { configured: u32, derived: u32, key: String },
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

fn read(path: &Path) -> Result<String, TrustError> {
    std::fs::read_to_string(path).map_err(|source| TrustError::Read { path: path.into(), source })
}

fn write(path: &Path, text: &str) -> Result<(), TrustError> {
    std::fs::write(path, text).map_err(|source| TrustError::Write { path: path.into(), source })
}

fn malformed(path: &Path) -> impl Fn((usize, String)) -> TrustError + '_ {
    move |(line, problem)| TrustError::Malformed { path: path.into(), line, problem }
}

pub fn write_anchor(path: &Path, key: &PublicKey) -> Result<(), TrustError> {
    let text = format!(
        "# x0tta6bl4 trust anchor (ML-DSA-65 public key)\nkey_id: {}\npublic: {}\n",
        key.key_id().to_hex(),
        hex(&key.as_bytes()[..])
    );
    write(path, &text)
}

pub fn read_anchor(path: &Path) -> Result<PublicKey, TrustError> {
    let text = read(path)?;
    let [key_id, public] = keyfile::parse(&text, ["key_id", "public"]).map_err(malformed(path))?;
    let public = public.ok_or_else(|| malformed(path)((keyfile::last_line(&text), "needs a `public` line".into())))?;
    let key = PublicKey::from_bytes(&public.bytes)
        .map_err(|e| malformed(path)((public.line, format!("`public` is not an ML-DSA-65 public key: {e}"))))?;
    if let Some(id) = key_id
        && id.bytes != key.key_id().0
    {
        return Err(malformed(path)((id.line, "`key_id` is not the SHA-256 of `public`".into())));
    }
    Ok(key)
}

pub fn write_certificate(path: &Path, cert: &Certificate) -> Result<(), TrustError> {
    let mut bytes = Vec::with_capacity(Certificate::ENCODED_LEN);
    cert.encode(&mut bytes);
    let text = format!(
        "# x0tta6bl4 certificate for node {} with key {}, valid until unix time {}\ncertificate: {}\n",
        cert.node.0,
        cert.key.to_hex(),
        cert.not_after_s,
        hex(&bytes)
    );
    write(path, &text)
}

pub fn read_certificate(path: &Path) -> Result<Certificate, TrustError> {
    let text = read(path)?;
    let [cert] = keyfile::parse(&text, ["certificate"]).map_err(malformed(path))?;
    let cert = cert.ok_or_else(|| malformed(path)((keyfile::last_line(&text), "needs a `certificate` line".into())))?;
    Certificate::decode(&cert.bytes).ok_or_else(|| {
        malformed(path)((cert.line, format!("`certificate` is not {} bytes of certificate", Certificate::ENCODED_LEN)))
    })
}

/// What a key material file holds.
pub enum KeyFile {
    /// A key pair: a node's identity, or a trust anchor's signing key.
    Pair(SigningKey),
    /// A public key: a trust anchor file.
    Public(PublicKey),
    Certificate(Certificate),
}

/// Reads any of the three key material files, telling them apart by their fields.
pub fn read_any(path: &Path) -> Result<KeyFile, TrustError> {
    let text = read(path)?;
    let [_, _, secret, certificate] =
        keyfile::parse(&text, ["key_id", "public", "secret", "certificate"]).map_err(malformed(path))?;
    if certificate.is_some() {
        read_certificate(path).map(KeyFile::Certificate)
    } else if secret.is_some() {
        Ok(KeyFile::Pair(identity::load(path)?))
    } else {
        read_anchor(path).map(KeyFile::Public)
    }
}

/// The node's identity under its configured trust policy, checked against `node_id`:
/// a certificate must name this node and key (unless `impostor`, the lab's fault
/// injection), and an allowlisted node must go by the id its key derives.
/// `clock_origin_s` is Unix time when the node's clock read zero.
pub fn build(cfg: &TrustConfig, node_id: NodeId, identity: Identity, clock_origin_s: u64, impostor: bool) -> Result<Trust, TrustError> {
    let key_id = identity.key.public().key_id();
    let (certificate, policy) = match cfg {
        TrustConfig::Anchor { anchor, certificate } => {
            let cert = read_certificate(certificate)?;
            if !impostor && (cert.node != node_id || cert.key != key_id) {
                return Err(TrustError::NotOurs {
                    path: certificate.clone(),
                    cert_node: cert.node.0,
                    cert_key: cert.key.to_hex(),
                    node: node_id.0,
                    key: key_id.to_hex(),
                });
            }
            (Some(cert), TrustPolicy::Anchor(read_anchor(anchor)?))
        }
        TrustConfig::Allowlist(keys) => {
            if key_id.node_id() != node_id {
                return Err(TrustError::IdNotDerived { configured: node_id.0, derived: key_id.node_id().0, key: key_id.to_hex() });
            }
            (None, TrustPolicy::Allowlist(keys.clone()))
        }
    };
    Ok(Trust { key: identity.key, certificate, policy, clock_origin_s })
}
