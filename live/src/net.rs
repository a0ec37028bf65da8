//! UDP on real interfaces: one socket per interface, bound to it, in the link-local
//! multicast group. The socket is bound to the unspecified address, so the kernel picks the
//! source: the interface's link-local address, or a configured one where the link has no
//! link-local address. Moves bytes only; what they mean is the core's business.

use crate::config::MULTICAST_GROUP;
use socket2::{Domain, Protocol, Socket, Type};
use std::ffi::CString;
use std::io;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::task::{Context, Poll};
use thiserror::Error;
use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use x0tta6bl4::ids::PeerAddr;

#[derive(Debug, Error)]
pub enum NetError {
    #[error("interface `{0}` does not exist (see `ip link`)")]
    NoSuchInterface(String),
    #[error("interface `{name}`: {what}: {source}")]
    Socket { name: String, what: &'static str, source: io::Error },
}

/// One interface's socket.
pub struct Iface {
    pub name: String,
    pub index: u32,
    pub socket: UdpSocket,
}

pub fn interface_index(name: &str) -> Result<u32, NetError> {
    let c = CString::new(name).map_err(|_| NetError::NoSuchInterface(name.into()))?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(NetError::NoSuchInterface(name.into())),
        i => Ok(i),
    }
}

impl Iface {
    /// Binds `[::]:port` on interface `name` only, joins the group there, and sends
    /// multicast out of it. Several interfaces share the port: each socket is bound to its
    /// own device, which the kernel treats as distinct bindings.
    pub fn open(name: &str, port: u16) -> Result<Iface, NetError> {
        let index = interface_index(name)?;
        let err = |what| move |source| NetError::Socket { name: name.into(), what, source };
        let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).map_err(err("socket"))?;
        s.set_only_v6(true).map_err(err("IPV6_V6ONLY"))?;
        s.set_reuse_address(true).map_err(err("SO_REUSEADDR"))?;
        s.bind_device(Some(name.as_bytes())).map_err(err("SO_BINDTODEVICE (needs CAP_NET_RAW)"))?;
        s.set_multicast_if_v6(index).map_err(err("IPV6_MULTICAST_IF"))?;
        s.set_multicast_loop_v6(false).map_err(err("IPV6_MULTICAST_LOOP"))?;
        // Link-local frames must not be forwarded; a hop limit of 1 says so to the kernel.
        s.set_multicast_hops_v6(1).map_err(err("IPV6_MULTICAST_HOPS"))?;
        s.set_nonblocking(true).map_err(err("O_NONBLOCK"))?;
        let any = SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0);
        s.bind(&SocketAddr::V6(any).into()).map_err(err("bind"))?;
        s.join_multicast_v6(&MULTICAST_GROUP, index).map_err(err("joining the multicast group"))?;
        let socket = UdpSocket::from_std(s.into()).map_err(err("registering with tokio"))?;
        Ok(Iface { name: name.into(), index, socket })
    }

    /// Where a frame for `peer` goes on this interface.
    pub fn unicast(&self, peer: PeerAddr) -> SocketAddr {
        SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(peer.ip), peer.port, 0, self.index))
    }

    pub fn multicast(&self, port: u16) -> SocketAddr {
        SocketAddr::V6(SocketAddrV6::new(MULTICAST_GROUP, port, 0, self.index))
    }
}

pub fn peer_addr(from: SocketAddr) -> PeerAddr {
    match from {
        SocketAddr::V6(a) => PeerAddr { ip: a.ip().octets(), port: a.port() },
        SocketAddr::V4(a) => PeerAddr { ip: a.ip().to_ipv6_mapped().octets(), port: a.port() },
    }
}

/// Polls every interface's socket for a datagram, into `buf`, starting at interface `first`
/// (rotate it so that a busy interface cannot starve the others). One buffer, reused:
/// receiving allocates nothing.
pub fn poll_recv(
    ifaces: &[Iface],
    first: usize,
    cx: &mut Context<'_>,
    buf: &mut [u8],
) -> Poll<(usize, io::Result<(usize, SocketAddr)>)> {
    let n = ifaces.len();
    for i in (0..n).map(|k| (first + k) % n) {
        let mut rb = ReadBuf::new(buf);
        match ifaces[i].socket.poll_recv_from(cx, &mut rb) {
            Poll::Ready(Ok(from)) => return Poll::Ready((i, Ok((rb.filled().len(), from)))),
            Poll::Ready(Err(e)) => return Poll::Ready((i, Err(e))),
            Poll::Pending => {}
        }
    }
    Poll::Pending
}
