//! A mesh of babeld daemons in a [`Lab`], laid out like a [`crate::mesh::Mesh`] of x0-node
//! processes, for benchmarking x0-node against a real, widely deployed routing daemon.
//!
//! babeld routes the kernel's IPv6 traffic, so the probes here are kernel traffic too: each
//! node has the address `fd00::1:0 + n` on its loopback (babeld announces local addresses
//! by default), and a UDP socket opened inside its namespace answers probes by echoing them.
//! A probe is delivered when its echo comes back to the source, as an x0-node probe is.

use crate::lab::{Lab, LabError, Ns};
use std::net::{Ipv6Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// Where every node's echo socket listens (inside its own namespace).
const ECHO_PORT: u16 = 7099;
/// A probe datagram: a kind byte (request or echo) and the probe id.
const REQUEST: u8 = 1;
const ECHO: u8 = 2;
const PROBE_BYTES: usize = 9;

/// The address babeld routes to node `n`.
pub fn node_address(n: u32) -> Ipv6Addr {
    let k = n + 1;
    Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 1 + (k >> 16) as u16, (k & 0xffff) as u16, 0)
}

struct Member {
    ns: Ns,
    ifaces: Vec<String>,
    child: Option<usize>,
    socket: UdpSocket,
}

pub struct BabelMesh {
    lab: Lab,
    program: PathBuf,
    args: Vec<String>,
    dir: PathBuf,
    members: Vec<Member>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<Result<(), LabError>>>,
}

impl BabelMesh {
    /// Builds the namespaces, links, addresses and echo sockets for `nodes` nodes joined by
    /// `links`; starts no daemon. Echoes of probes arrive on `echoes` as (probe id, when).
    /// `args` go to every babeld before its interfaces (e.g. `-h 0.1 -H 0.1`); its state,
    /// pid and log files go to `dir`.
    pub fn build(
        program: &Path,
        args: &[String],
        dir: &Path,
        nodes: u32,
        links: &[(u32, u32)],
        echoes: mpsc::Sender<(u64, Instant)>,
    ) -> Result<BabelMesh, LabError> {
        let mut lab = Lab::new("babel")?;
        let wiring = lab.wire(nodes, links)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (mut members, mut threads) = (Vec::new(), Vec::new());
        for (n, (&ns, ifaces)) in wiring.namespaces.iter().zip(wiring.ifaces).enumerate() {
            lab.sysctl(ns, "net.ipv6.conf.all.forwarding", "1")?;
            lab.add_address(ns, "lo", node_address(n as u32))?;
            let (tx, rx) = mpsc::channel();
            let (echoes, stop) = (echoes.clone(), stop.clone());
            let thread = lab.spawn_in_namespace(ns, &format!("echo-{n}"), move || {
                let socket = match UdpSocket::bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, ECHO_PORT))) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let _ = socket.set_read_timeout(Some(Duration::from_millis(100)));
                let _ = tx.send(socket.try_clone());
                answer(&socket, &echoes, &stop);
            })?;
            let socket = rx
                .recv()
                .map_err(|_| LabError::Command { command: format!("echo socket of node {n}"), detail: "its thread ended".into() })?
                .map_err(|e| LabError::Command { command: format!("binding the echo socket of node {n}"), detail: e.to_string() })?;
            threads.push(thread);
            members.push(Member { ns, ifaces, child: None, socket });
        }
        Ok(BabelMesh { lab, program: program.into(), args: args.to_vec(), dir: dir.into(), members, stop, threads })
    }

    /// Starts babeld on node `n`, fresh: no state or pid file from an earlier run (babeld
    /// refuses to start over an existing pid file).
    pub fn start(&mut self, n: u32) -> Result<(), LabError> {
        let m = &self.members[n as usize];
        let file = |ext: &str| self.dir.join(format!("babeld-{n}.{ext}")).display().to_string();
        for ext in ["state", "pid", "log"] {
            let _ = std::fs::remove_file(file(ext));
        }
        let mut args: Vec<String> = self.args.clone();
        args.extend(["-I".into(), file("pid"), "-S".into(), file("state"), "-d".into(), "0".into(), "-L".into(), file("log")]);
        args.extend(m.ifaces.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let child = self.lab.spawn(m.ns, &self.program.display().to_string(), &args, Stdio::null())?;
        self.members[n as usize].child = Some(child);
        Ok(())
    }

    /// Nodes whose babeld was started but is not running, with the log that says why.
    pub fn dead(&mut self) -> Vec<(u32, PathBuf)> {
        let mut dead = Vec::new();
        for (n, m) in self.members.iter().enumerate() {
            if let Some(child) = m.child
                && self.lab.wait(child, Duration::ZERO).is_some()
            {
                dead.push((n as u32, self.dir.join(format!("babeld-{n}.log"))));
            }
        }
        dead
    }

    /// Whether node `n` has any link to run babeld on.
    pub fn is_linked(&self, n: u32) -> bool {
        !self.members[n as usize].ifaces.is_empty()
    }

    /// The node fails as a whole: its kernel stops forwarding, and babeld is killed without
    /// a chance to retract anything. (Killing babeld alone would leave its routes in the
    /// kernel, forwarding as before.) Its links stay up, as a hung router's would.
    pub fn crash(&mut self, n: u32) -> Result<(), LabError> {
        self.lab.sysctl(self.members[n as usize].ns, "net.ipv6.conf.all.forwarding", "0")?;
        if let Some(child) = self.members[n as usize].child.take() {
            self.lab.signal(child, libc::SIGKILL);
            self.lab.wait(child, Duration::from_secs(2));
        }
        Ok(())
    }

    /// Node `n`'s host goes dark (`Lab::go_dark`).
    pub fn go_dark(&self, n: u32) -> Result<(), LabError> {
        self.lab.go_dark(self.members[n as usize].ns)
    }

    /// Sends probe `id` from `src` to `dst`; `false` if the kernel refused it at once (no
    /// route), which is a lost probe.
    pub fn probe(&self, src: u32, dst: u32, id: u64) -> bool {
        let mut datagram = [0u8; PROBE_BYTES];
        datagram[0] = REQUEST;
        datagram[1..].copy_from_slice(&id.to_be_bytes());
        self.members[src as usize].socket.send_to(&datagram, SocketAddr::from((node_address(dst), ECHO_PORT))).is_ok()
    }

    /// CPU time babeld on node `n` has used so far, if it is running.
    pub fn cpu_time(&self, n: u32) -> Option<Duration> {
        self.lab.cpu_time(self.members[n as usize].child?)
    }

    /// Stops every daemon and echo thread; the lab goes when the mesh is dropped.
    pub fn stop(&mut self) {
        for m in &self.members {
            if let Some(child) = m.child {
                self.lab.signal(child, libc::SIGTERM);
            }
        }
        for i in 0..self.members.len() {
            if let Some(child) = self.members[i].child.take() {
                self.lab.wait(child, Duration::from_secs(2));
            }
        }
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            if let Ok(Err(e)) = thread.join() {
                eprintln!("warning: an echo socket was not served: {e}");
            }
        }
    }
}

impl Drop for BabelMesh {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Echoes requests back to their sender and reports echoes of this node's own probes.
fn answer(socket: &UdpSocket, echoes: &mpsc::Sender<(u64, Instant)>, stop: &AtomicBool) {
    let mut buf = [0u8; 64];
    while !stop.load(Ordering::Relaxed) {
        let Ok((len, from)) = socket.recv_from(&mut buf) else { continue };
        if len != PROBE_BYTES {
            continue;
        }
        match buf[0] {
            REQUEST => {
                buf[0] = ECHO;
                let _ = socket.send_to(&buf[..PROBE_BYTES], from);
            }
            ECHO => {
                let id = u64::from_be_bytes(buf[1..PROBE_BYTES].try_into().expect("eight bytes"));
                if echoes.send((id, Instant::now())).is_err() {
                    return;
                }
            }
            _ => {}
        }
    }
}
