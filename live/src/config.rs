//! The x0-node config file. Its `protocol:` section is the scenario's, with the same names
//! and checks, so that a setting means the same thing in the simulator and on a real mesh.

use serde::Deserialize;
use serde_saphyr::{Location, Spanned};
use std::collections::BTreeSet;
use std::net::{Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use thiserror::Error;
use x0tta6bl4::config::ProtocolConfig;
use x0tta6bl4::ids::NodeId;
use x0tta6bl4::pq::KeyId;
use x0tta6bl4::scenario::{Origin, error_at};

/// Where the protocol listens unless configured: not Babel's 6696, so that x0-node and
/// babeld can run side by side on one mesh for comparison.
pub const DEFAULT_PORT: u16 = 6690;
/// The link-local group hellos and updates go to: RFC 4727's experimental group, so that no
/// other protocol's listeners receive our frames.
pub const MULTICAST_GROUP: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x114);
/// Most interfaces one node drives; the core numbers them with a u16, and a node with more
/// is a misconfiguration.
pub const INTERFACES_MAX: usize = 256;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// Syntax or validation error, rendered with the file's line and column.
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeConfigFile {
    node_id: u32,
    identity: PathBuf,
    #[serde(default = "default_port")]
    port: u16,
    interfaces: Spanned<Vec<String>>,
    #[serde(default)]
    peers: Vec<Spanned<StaticPeer>>,
    #[serde(default)]
    metrics: Option<SocketAddr>,
    #[serde(default)]
    events: Option<SocketAddr>,
    #[serde(default = "default_true")]
    xdp: bool,
    #[serde(default = "default_protocol")]
    protocol: Spanned<ProtocolConfig>,
    #[serde(default)]
    security: Option<Spanned<SecurityFile>>,
}

/// `security:`: either `anchor` and `certificate` files, or an `allowlist` of key ids.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecurityFile {
    #[serde(default)]
    anchor: Option<PathBuf>,
    #[serde(default)]
    certificate: Option<PathBuf>,
    #[serde(default)]
    allowlist: Option<Vec<String>>,
}

/// Whom the node admits as a neighbour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustConfig {
    /// Nodes with a certificate from this anchor; `certificate` is this node's own.
    Anchor { anchor: PathBuf, certificate: PathBuf },
    /// Nodes with these keys, each going by the id its key derives.
    Allowlist(BTreeSet<KeyId>),
}

impl SecurityFile {
    fn check(self) -> Result<TrustConfig, String> {
        match (self.anchor, self.certificate, self.allowlist) {
            (Some(anchor), Some(certificate), None) => Ok(TrustConfig::Anchor { anchor, certificate }),
            (None, None, Some(list)) => {
                let mut keys = BTreeSet::new();
                for (i, hex) in list.iter().enumerate() {
                    let key = KeyId::from_hex(hex).ok_or_else(|| {
                        format!("security.allowlist[{i}]: `{hex}` is not a key id (64 hex digits, logged by each node at start)")
                    })?;
                    keys.insert(key);
                }
                Ok(TrustConfig::Allowlist(keys))
            }
            (Some(_), None, None) | (None, Some(_), None) => {
                Err("security: `anchor` and `certificate` go together: the anchor's public key file and this node's certificate".into())
            }
            _ => Err("security: give either `anchor` and `certificate`, or `allowlist`, not both".into()),
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_port() -> u16 {
    DEFAULT_PORT
}

fn default_protocol() -> Spanned<ProtocolConfig> {
    Spanned::new(ProtocolConfig::default(), Location::UNKNOWN, Location::UNKNOWN)
}

/// A neighbour to greet by unicast as well as by multicast, for links where multicast does
/// not get through.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticPeer {
    pub interface: String,
    pub address: Ipv6Addr,
    #[serde(default = "default_port")]
    pub port: u16,
}

/// A checked config.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub node_id: NodeId,
    /// The node's ML-DSA-65 key pair file; created, readable by its owner only, when absent.
    pub identity: PathBuf,
    pub port: u16,
    pub interfaces: Vec<String>,
    pub peers: Vec<StaticPeer>,
    /// Where `/metrics` (Prometheus text) and `/health` are served, if anywhere.
    pub metrics: Option<SocketAddr>,
    /// Where the JSON-lines event stream is served (TCP), if anywhere.
    pub events: Option<SocketAddr>,
    /// Attach the XDP program (default). Where it cannot attach the node runs in
    /// userspace-only mode and says so; `false` does not try.
    pub xdp: bool,
    pub protocol: ProtocolConfig,
    /// Link security: absent, frames travel unauthenticated (a lab or a trusted wire only).
    pub security: Option<TrustConfig>,
    /// Set by `x0-node --impostor` only, never from the file: the certificate need not be
    /// this key's (fault injection for the lab's `impersonate`).
    pub impostor: bool,
}

impl NodeConfig {
    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        NodeConfig::parse(&text, &path.display().to_string())
    }

    /// Parses and checks config text; `name` is how errors refer to it.
    pub fn parse(text: &str, name: &str) -> Result<NodeConfig, ConfigError> {
        let origin = Origin { name: name.to_string(), text: text.to_string() };
        let f: NodeConfigFile = serde_saphyr::from_str(text).map_err(|e| {
            ConfigError::Invalid(e.render_with_options(serde_saphyr::render_options! { source_name: Some(name) }))
        })?;
        let invalid = |loc, msg: String| ConfigError::Invalid(error_at(&origin, loc, msg).to_string());
        if let Err(e) = f.protocol.value.validate() {
            return Err(ConfigError::Invalid(origin.protocol_error(f.protocol.referenced, &e).to_string()));
        }
        let interfaces = &f.interfaces.value;
        if interfaces.is_empty() || interfaces.len() > INTERFACES_MAX {
            let msg = format!("interfaces: lists {}, expected 1 to {INTERFACES_MAX} interface names", interfaces.len());
            return Err(invalid(f.interfaces.referenced, msg));
        }
        for (i, name) in interfaces.iter().enumerate() {
            if interfaces[..i].contains(name) {
                return Err(invalid(f.interfaces.referenced, format!("interfaces: `{name}` is listed twice")));
            }
        }
        for p in &f.peers {
            if !interfaces.contains(&p.value.interface) {
                let msg = format!("peers: interface `{}` is not in `interfaces`; add it there or fix the name", p.value.interface);
                return Err(invalid(p.referenced, msg));
            }
        }
        if f.port == 0 {
            return Err(invalid(Location::UNKNOWN, "port: must not be 0".into()));
        }
        let security = match f.security {
            Some(s) => Some(s.value.check().map_err(|msg| invalid(s.referenced, msg))?),
            None => None,
        };
        Ok(NodeConfig {
            node_id: NodeId(f.node_id),
            identity: f.identity,
            port: f.port,
            interfaces: f.interfaces.value,
            peers: f.peers.into_iter().map(|p| p.value).collect(),
            metrics: f.metrics,
            events: f.events,
            xdp: f.xdp,
            protocol: f.protocol.value,
            security,
            impostor: false,
        })
    }
}
