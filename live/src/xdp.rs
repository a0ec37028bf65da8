//! Loads ebpf/x0_xdp.c (compiled by build.rs, embedded here) with aya, attaches it to the
//! node's interfaces, and reads and writes its maps: per-peer counters, the quarantine
//! blocklist, injected loss (global and per peer), and its own counters.

use aya::maps::{Array, HashMap, MapData, PerCpuArray};
use aya::programs::{Xdp, XdpMode};
use aya::{Ebpf, Pod};
use std::net::Ipv6Addr;
use thiserror::Error;

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/x0_xdp.o"));

#[derive(Debug, Error)]
pub enum XdpError {
    #[error("loading the XDP object: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("the XDP program: {0}")]
    Program(#[from] aya::programs::ProgramError),
    #[error("XDP map `{name}`: {source}")]
    Map { name: &'static str, source: aya::maps::MapError },
    #[error("the XDP object has no `{0}`; ebpf/x0_xdp.c and live/src/xdp.rs disagree")]
    Missing(&'static str),
    #[error("probability {0} is not between 0 and 1")]
    Probability(f64),
}

#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerCounters {
    pub packets: u64,
    pub bytes: u64,
    /// Of `packets`, those handed to the stack (not quarantined, not lost to injected loss).
    pub passed: u64,
}

// SAFETY: three u64s, no padding: any bit pattern is a valid value, as the kernel writes it.
unsafe impl Pod for PeerCounters {}

/// What the program did, summed over CPUs; indices as in `stats` of x0_xdp.c.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct XdpStats {
    pub passed: u64,
    pub blocked: u64,
    pub lost: u64,
    pub other: u64,
    pub malformed: u64,
}

/// The program attached to a node's interfaces. Dropping it detaches everything.
pub struct XdpHandle {
    // Owns the loaded program and its attachments; never read, only kept alive.
    _ebpf: Ebpf,
    /// "driver" or "generic" per interface, in the order given to `attach`.
    pub modes: Vec<&'static str>,
    peers: HashMap<MapData, [u8; 16], PeerCounters>,
    blocklist: HashMap<MapData, [u8; 16], u8>,
    drop_all: Array<MapData, u32>,
    drop_peer: HashMap<MapData, [u8; 16], u32>,
    stats: PerCpuArray<MapData, u64>,
}

fn take<T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, XdpError> {
    let map = ebpf.take_map(name).ok_or(XdpError::Missing(name))?;
    T::try_from(map).map_err(|source| XdpError::Map { name, source })
}

/// A probability as the program compares it: parts of 2^32, 1.0 meaning every packet.
fn threshold(p: f64) -> Result<u32, XdpError> {
    if !(0.0..=1.0).contains(&p) {
        return Err(XdpError::Probability(p));
    }
    Ok((p * f64::from(u32::MAX)).round() as u32)
}

impl XdpHandle {
    /// Loads the program for UDP port `port` and attaches it to each interface, natively
    /// where the driver supports it, else in generic (SKB) mode.
    pub fn attach(interfaces: &[&str], port: u16) -> Result<XdpHandle, XdpError> {
        let mut ebpf = Ebpf::load(OBJECT)?;
        let mut config: Array<MapData, u32> = take(&mut ebpf, "config")?;
        config.set(0, u32::from(port), 0).map_err(|source| XdpError::Map { name: "config", source })?;
        let program: &mut Xdp = ebpf.program_mut("x0_xdp").ok_or(XdpError::Missing("x0_xdp"))?.try_into()?;
        program.load()?;
        let mut modes = Vec::with_capacity(interfaces.len());
        for name in interfaces {
            match program.attach(name, XdpMode::Driver) {
                Ok(_) => modes.push("driver"),
                Err(_) => {
                    program.attach(name, XdpMode::Skb)?;
                    modes.push("generic");
                }
            }
        }
        Ok(XdpHandle {
            peers: take(&mut ebpf, "peer_counters")?,
            blocklist: take(&mut ebpf, "blocklist")?,
            drop_all: take(&mut ebpf, "drop_all")?,
            drop_peer: take(&mut ebpf, "drop_peer")?,
            stats: take(&mut ebpf, "stats")?,
            modes,
            _ebpf: ebpf,
        })
    }

    /// Packets and bytes received from each peer since attachment.
    pub fn peer_counters(&self) -> Vec<(Ipv6Addr, PeerCounters)> {
        self.peers.iter().filter_map(Result::ok).map(|(k, v)| (Ipv6Addr::from(k), v)).collect()
    }

    /// The counters of one peer, if it has sent anything since attachment.
    pub fn peer(&self, ip: [u8; 16]) -> Option<PeerCounters> {
        self.peers.get(&ip, 0).ok()
    }

    /// Quarantines `peer` (everything from it is dropped in the kernel) or lifts it.
    pub fn set_blocked(&mut self, peer: Ipv6Addr, blocked: bool) -> Result<(), XdpError> {
        let map = |source| XdpError::Map { name: "blocklist", source };
        if blocked {
            self.blocklist.insert(peer.octets(), 1, 0).map_err(map)
        } else {
            match self.blocklist.remove(&peer.octets()) {
                Err(aya::maps::MapError::KeyNotFound) => Ok(()),
                r => r.map_err(map),
            }
        }
    }

    /// Drops this fraction of the protocol's packets from `peer`, or from every peer
    /// without an override of its own (`None`). 1.0 is a partition; 0 removes an override.
    pub fn set_loss(&mut self, peer: Option<Ipv6Addr>, probability: f64) -> Result<(), XdpError> {
        let t = threshold(probability)?;
        match peer {
            None => self.drop_all.set(0, t, 0).map_err(|source| XdpError::Map { name: "drop_all", source }),
            Some(p) if t == 0 => match self.drop_peer.remove(&p.octets()) {
                Err(aya::maps::MapError::KeyNotFound) => Ok(()),
                r => r.map_err(|source| XdpError::Map { name: "drop_peer", source }),
            },
            Some(p) => self.drop_peer.insert(p.octets(), t, 0).map_err(|source| XdpError::Map { name: "drop_peer", source }),
        }
    }

    pub fn stats(&self) -> XdpStats {
        let sum = |i: u32| self.stats.get(&i, 0).map_or(0, |v| v.iter().sum());
        XdpStats { passed: sum(0), blocked: sum(1), lost: sum(2), other: sum(3), malformed: sum(4) }
    }
}
