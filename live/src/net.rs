//! UDP on real interfaces: one socket per interface, bound to it, in the link-local
//! multicast group. The socket is bound to the unspecified address, so the kernel picks the
//! source: the interface's link-local address, or a configured one where the link has no
//! link-local address. Moves bytes only; what they mean is the core's business.
//!
//! The sockets also ask for ICMPv6 errors (`IPV6_RECVERR`): a port unreachable from a
//! neighbour's host is the quickest news that its process died (`core::node::bounce`).
//! With that option, Linux also fails the next send or receive on the socket once with
//! `ECONNREFUSED` after each error; [`send_to`] and the daemon's receive loop absorb it.

use crate::config::MULTICAST_GROUP;
use socket2::{Domain, Protocol, Socket, Type};
use std::ffi::CString;
use std::io;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::task::{Context, Poll};
use thiserror::Error;
use tokio::io::{Interest, ReadBuf};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::warn;
use x0tta6bl4::ids::PeerAddr;
use x0tta6bl4::wire::MAX_FRAME_LEN;

/// ICMPv6 destination unreachable (RFC 4443 3.1), code 4: port unreachable.
const ICMP6_DST_UNREACH: u8 = 1;
const ICMP6_DST_UNREACH_NOPORT: u8 = 4;

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
    /// Shared with the task reading its error queue ([`watch_unreachable`]).
    pub socket: Arc<UdpSocket>,
}

/// A frame this node sent that found no process listening at `dst`: an ICMPv6 port
/// unreachable, with the frame as the report quotes it.
#[derive(Debug)]
pub struct Unreachable {
    pub iface: usize,
    pub dst: PeerAddr,
    pub quoted: Vec<u8>,
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
        let on: libc::c_int = 1;
        // SAFETY: a valid socket and a c_int option value of the size passed.
        let r = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::IPPROTO_IPV6,
                libc::IPV6_RECVERR,
                (&raw const on).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(err("IPV6_RECVERR")(io::Error::last_os_error()));
        }
        let any = SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0);
        s.bind(&SocketAddr::V6(any).into()).map_err(err("bind"))?;
        s.join_multicast_v6(&MULTICAST_GROUP, index).map_err(err("joining the multicast group"))?;
        let socket = Arc::new(UdpSocket::from_std(s.into()).map_err(err("registering with tokio"))?);
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

/// Sends `frame` to `to` without waiting. An `ECONNREFUSED` is the socket reporting an
/// earlier ICMP error, not this send, which did not happen: it is tried once more.
pub fn send_to(socket: &UdpSocket, frame: &[u8], to: SocketAddr) -> io::Result<usize> {
    match socket.try_send_to(frame, to) {
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => socket.try_send_to(frame, to),
        r => r,
    }
}

/// Reads the error queue of interface `iface`'s socket for as long as the daemon runs,
/// passing every port-unreachable report on to `reports`. Other errors on the queue (a
/// neighbour's address unreachable, a packet too big) are read and let go. When `reports`
/// is full a report is dropped: the failure detector's own timeout still stands.
pub async fn watch_unreachable(iface: usize, socket: Arc<UdpSocket>, reports: mpsc::Sender<Unreachable>) {
    let mut buf = vec![0u8; MAX_FRAME_LEN];
    loop {
        if let Err(e) = socket.ready(Interest::ERROR).await {
            warn!("waiting for ICMP errors on interface {iface}: {e}; port-unreachable reports stop");
            return;
        }
        loop {
            match socket.try_io(Interest::ERROR, || read_error(&socket, &mut buf)) {
                Ok(Some((dst, len))) => {
                    let report = Unreachable { iface, dst, quoted: buf[..len].to_vec() };
                    if let Err(mpsc::error::TrySendError::Closed(_)) = reports.try_send(report) {
                        return;
                    }
                }
                Ok(None) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    warn!("reading ICMP errors on interface {iface}: {e}");
                    break;
                }
            }
        }
    }
}

/// Takes one entry off the socket's error queue: `Some((destination, quoted length))` for a
/// port unreachable whose quote fit in `buf`, `None` for any other entry.
fn read_error(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<Option<(PeerAddr, usize)>> {
    // SAFETY (whole function): every pointer handed to recvmsg points into a local that
    // outlives the call, with its true length; the control messages are walked with the
    // CMSG_* macros within `msg_controllen`, and read unaligned.
    let mut name: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    let mut control = [0u64; 64];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&raw mut name).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&control);
    let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &raw mut msg, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if msg.msg_flags & libc::MSG_TRUNC != 0 || i32::from(name.sin6_family) != libc::AF_INET6 {
        return Ok(None);
    }
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&raw const msg) };
    while !cmsg.is_null() {
        let (level, kind) = unsafe { ((*cmsg).cmsg_level, (*cmsg).cmsg_type) };
        if level == libc::IPPROTO_IPV6 && kind == libc::IPV6_RECVERR {
            let ee: libc::sock_extended_err = unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast()) };
            if ee.ee_origin == libc::SO_EE_ORIGIN_ICMP6 && ee.ee_type == ICMP6_DST_UNREACH && ee.ee_code == ICMP6_DST_UNREACH_NOPORT {
                let dst = PeerAddr { ip: name.sin6_addr.s6_addr, port: u16::from_be(name.sin6_port) };
                return Ok(Some((dst, n as usize)));
            }
        }
        cmsg = unsafe { libc::CMSG_NXTHDR(&raw const msg, cmsg) };
    }
    Ok(None)
}
