//! A replay attacker on a lab link (the scenario's `replay` fault): a packet socket on one
//! end's interface captures every protocol frame that end sends and injects the same bytes
//! again `delay` later, so the peer receives them from the sender's own address and port,
//! as from a tap on the wire. Lab code: raw sockets, only inside namespaces the lab made.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Frames held for replay at once; more are not captured until some went out. At the
/// protocol's rates (hellos every 100 ms, updates) a link carries far fewer per delay.
const HELD_FRAMES_MAX: usize = 65_536;
/// How long a capture waits for a frame before it looks at its deadlines and stop flag.
const POLL_INTERVAL: Duration = Duration::from_millis(2);
/// Ethernet, then a fixed IPv6 header, then UDP: where the fields the filter reads sit.
const ETH_HEADER_LEN: usize = 14;
const IPV6_HEADER_LEN: usize = 40;
const ETH_P_IPV6: u16 = 0x86DD;
const IPPROTO_UDP: u8 = 17;

/// What a tap did, for the lab's report.
#[derive(Default)]
pub struct TapCounters {
    pub captured: AtomicU64,
    pub replayed: AtomicU64,
}

/// Whether `frame` (from Ethernet up) is UDP over IPv6 to `port`: the protocol's frames.
fn is_protocol(frame: &[u8], port: u16) -> bool {
    let udp = ETH_HEADER_LEN + IPV6_HEADER_LEN;
    frame.len() >= udp + 8
        && u16::from_be_bytes([frame[12], frame[13]]) == ETH_P_IPV6
        && frame[ETH_HEADER_LEN + 6] == IPPROTO_UDP
        && u16::from_be_bytes([frame[udp + 2], frame[udp + 3]]) == port
}

/// Writes the UDP checksum of a protocol frame (`is_protocol`). A frame captured on its
/// way out of a veth carries only the pseudo-header's partial sum (the device offers
/// checksum offload, so the kernel leaves the rest to it); sent again as raw bytes it
/// would be dropped by the receiver's UDP for a bad checksum.
fn write_udp_checksum(frame: &mut [u8]) {
    let ip = ETH_HEADER_LEN;
    let udp = ip + IPV6_HEADER_LEN;
    let udp_len = usize::from(u16::from_be_bytes([frame[udp + 4], frame[udp + 5]])).min(frame.len() - udp);
    frame[udp + 6] = 0;
    frame[udp + 7] = 0;
    let words = |bytes: &[u8]| -> u32 {
        bytes.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum()
    };
    // Pseudo-header: source and destination addresses, upper-layer length, next header.
    let mut sum = words(&frame[ip + 8..ip + 40]) + udp_len as u32 + u32::from(IPPROTO_UDP);
    sum += words(&frame[udp..udp + udp_len]);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // RFC 8200: a computed zero is sent as all ones over IPv6.
    let checksum = match !(sum as u16) {
        0 => 0xffff,
        c => c,
    };
    frame[udp + 6..udp + 8].copy_from_slice(&checksum.to_be_bytes());
}

fn last_os_error(what: &str) -> std::io::Error {
    let e = std::io::Error::last_os_error();
    std::io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// A raw packet socket on interface `ifname` of the calling thread's namespace.
fn packet_socket(ifname: &str) -> std::io::Result<(OwnedFd, i32)> {
    let ifindex = crate::net::interface_index(ifname).map_err(std::io::Error::other)? as i32;
    // Every protocol: the kernel shows a packet socket outgoing frames only when it taps
    // all of them (ETH_P_ALL); the filter picks the protocol's frames.
    let protocol = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: socket(2) with constant arguments; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(protocol)) };
    if fd < 0 {
        return Err(last_os_error("packet socket"));
    }
    // SAFETY: `fd` is a socket we just opened and own from here on.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_ll is plain data; zero is a valid value for every field.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = protocol;
    addr.sll_ifindex = ifindex;
    // SAFETY: `addr` is a valid sockaddr_ll and its size is passed with it.
    let bound = unsafe {
        libc::bind(fd.as_raw_fd(), (&raw const addr).cast(), std::mem::size_of::<libc::sockaddr_ll>() as u32)
    };
    if bound != 0 {
        return Err(last_os_error("binding the packet socket"));
    }
    let timeout = libc::timeval { tv_sec: 0, tv_usec: POLL_INTERVAL.as_micros() as libc::suseconds_t };
    // SAFETY: SO_RCVTIMEO takes a timeval, passed with its size.
    let set = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const timeout).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        )
    };
    if set != 0 {
        return Err(last_os_error("setting the capture timeout"));
    }
    Ok((fd, ifindex))
}

/// Captures what this end sends to UDP `port` on `ifname` and sends each frame again
/// `delay` later, until `stop`. Runs on a thread inside the end's namespace. The kernel
/// does not show a packet socket the frames it sent itself, so replays are not replayed.
pub fn tap(ifname: &str, port: u16, delay: Duration, stop: &AtomicBool, counters: &Arc<TapCounters>) -> std::io::Result<()> {
    let (fd, _) = packet_socket(ifname)?;
    let mut held: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: sockaddr_ll is plain data; recvfrom fills it.
        let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut from_len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
        // SAFETY: `buf` and `from` are valid for writes of the lengths given.
        let n = unsafe {
            libc::recvfrom(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0, (&raw mut from).cast(), &mut from_len)
        };
        if n > 0 {
            let frame = &buf[..n as usize];
            if from.sll_pkttype == libc::PACKET_OUTGOING && is_protocol(frame, port) && held.len() < HELD_FRAMES_MAX {
                let mut copy = frame.to_vec();
                write_udp_checksum(&mut copy);
                held.push_back((Instant::now() + delay, copy));
                counters.captured.fetch_add(1, Ordering::Relaxed);
            }
        } else {
            let e = std::io::Error::last_os_error();
            if !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted) {
                return Err(std::io::Error::new(e.kind(), format!("capturing on {ifname}: {e}")));
            }
        }
        let now = Instant::now();
        while held.front().is_some_and(|(due, _)| *due <= now) {
            let (_, frame) = held.pop_front().expect("a front frame");
            // SAFETY: `frame` is valid for reads of its length; the socket is bound to the
            // interface, so the Ethernet header in the frame is all the addressing needed.
            let sent = unsafe { libc::send(fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
            // A full device queue drops the replay, as it would the attacker's.
            if sent > 0 {
                counters.replayed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    Ok(())
}
