//! Small `Copy` identifiers. Tables are indexed by these, never by pointers.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A router identity on the wire and in routing tables.
///
/// In the simulator ids are dense (`0..n`); in live mode they are configured (and, once
/// identities are keyed, derived from the public key), so the core never assumes density.
#[derive(
    Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct NodeId(pub u32);

impl NodeId {
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// A node-local interface number, dense from 0 in the order the driver added them.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct IfIndex(pub u16);

impl IfIndex {
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for IfIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "if{}", self.0)
    }
}

/// A link-layer peer address that only the driver interprets: an IPv6 address and UDP port
/// in live mode, a synthetic value in the simulator. The core stores and echoes it so that it
/// can answer a peer unicast without knowing what a socket is.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PeerAddr {
    pub ip: [u8; 16],
    pub port: u16,
}

impl PeerAddr {
    /// The address the simulator gives a node: its id in the low bytes. Keeps sim traces
    /// readable and is never sent to a real socket.
    pub fn synthetic(node: NodeId) -> Self {
        let mut ip = [0u8; 16];
        ip[12..16].copy_from_slice(&node.0.to_be_bytes());
        PeerAddr { ip, port: 0 }
    }

    /// The node a [`PeerAddr::synthetic`] address names; `None` for any other address.
    pub fn synthetic_node(&self) -> Option<NodeId> {
        let low = u32::from_be_bytes([self.ip[12], self.ip[13], self.ip[14], self.ip[15]]);
        (self.port == 0 && self.ip[..12].iter().all(|&b| b == 0)).then_some(NodeId(low))
    }
}

/// The text form event logs use: `[ip]:port`. The address types of `core::net` are plain
/// values (no socket, no lookup), so formatting and parsing stay pure.
impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]:{}", core::net::Ipv6Addr::from(self.ip), self.port)
    }
}

impl std::str::FromStr for PeerAddr {
    type Err = core::net::AddrParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let a: core::net::SocketAddrV6 = text.parse()?;
        Ok(PeerAddr { ip: a.ip().octets(), port: a.port() })
    }
}

/// Where a frame goes on its interface.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Dest {
    /// Every neighbour on the interface (link-local multicast in live mode).
    Multicast,
    /// One neighbour.
    Unicast(PeerAddr),
}
