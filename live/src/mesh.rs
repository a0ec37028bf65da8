//! A mesh of x0-node processes in a [`Lab`]: one namespace per node, one veth pair per
//! link, and per node an agent thread inside its namespace that reads the node's event
//! stream and sends it commands. What the mesh does to nodes and links (kill, freeze, cut)
//! is real; deciding when is the caller's business.

pub use crate::lab::End;
use crate::identity::{self, IdentityError};
use crate::lab::{Lab, LabError, Ns};
use crate::replay::{self, TapCounters};
use crate::trust::{self, TrustError};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv6Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use thiserror::Error;
use x0tta6bl4::config::ProtocolConfig;
use crate::config::DEFAULT_PORT;
use x0tta6bl4::ids::{NodeId, PeerAddr};
use x0tta6bl4::metrics::AddressBook;
use x0tta6bl4::pq::SigningKey;
use x0tta6bl4::scenario::{LinkSecurity, TrustKind};
use x0tta6bl4::secure::Certificate;
use x0tta6bl4::eventlog::EventRecord;

/// Where each node serves, inside its own namespace (so every node can use the same ones).
const METRICS: &str = "127.0.0.1:9100";
const EVENTS: &str = "127.0.0.1:9101";
/// How long a node may take to open its event stream after starting.
const START_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Error)]
pub enum MeshError {
    #[error(transparent)]
    Lab(#[from] LabError),
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("node {node}: {what}")]
    Node { node: u32, what: String },
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Trust(#[from] TrustError),
}

/// One line of a node's event stream, or what went wrong reading it.
pub enum StreamItem {
    Event(EventRecord),
    /// The node's stream reported that this many events were lost to a slow reader.
    Lagged(u64),
    Bad(String),
}

struct Member {
    ns: Ns,
    config: PathBuf,
    child: Option<usize>,
    /// A kept-alive connection to the node's control endpoint, opened inside its namespace.
    control: Mutex<Option<BufReader<TcpStream>>>,
    /// Interface names, in the order the node numbers them.
    ifaces: Vec<String>,
}

pub struct Mesh {
    lab: Lab,
    binary: PathBuf,
    members: Vec<Member>,
    links: Vec<[End; 2]>,
    configs: Configs,
    /// Replay attackers on links, by link index.
    replays: Vec<(usize, Replay)>,
    stop: Arc<AtomicBool>,
    events: mpsc::Sender<(u32, StreamItem)>,
    /// The event-stream threads, joined at `stop` so that a failure of theirs is reported.
    followers: Vec<std::thread::JoinHandle<Result<(), LabError>>>,
}

/// What every node of a mesh runs with.
#[derive(Copy, Clone, Debug)]
pub struct NodeSetup<'a> {
    pub protocol: &'a ProtocolConfig,
    /// Link security: an anchor made for the run certifies every node.
    pub security: Option<&'a LinkSecurity>,
    /// Attach the XDP program.
    pub xdp: bool,
}

/// The lab's certificate authority: a trust anchor made for this run, which certifies each
/// node's key (made now, as a first start would) under the node's id.
struct Authority {
    anchor: SigningKey,
    anchor_file: PathBuf,
    not_after_s: u64,
}

impl Authority {
    fn new(dir: &Path, cfg: &LinkSecurity) -> Result<Self, MeshError> {
        let TrustKind::Anchor = cfg.trust;
        let anchor = SigningKey::generate(&mut identity::os_rng()?);
        let anchor_file = dir.join("anchor.pub");
        trust::write_anchor(&anchor_file, anchor.public())?;
        // Unlimited in a scenario means a year here: certificates always expire.
        let lifetime_s = cfg.certificate_lifetime.map_or(365 * 86_400, |d| d.as_secs());
        Ok(Authority { anchor, anchor_file, not_after_s: crate::daemon::unix_nanos() / 1_000_000_000 + lifetime_s })
    }

    /// Makes node `i`'s identity at `identity` and its certificate beside it.
    fn certify(&self, i: u32, identity: &Path) -> Result<(), MeshError> {
        let key = identity::load_or_create(identity)?.key;
        let cert = Certificate::issue(&self.anchor, &mut identity::os_rng()?, NodeId(i), key.public().key_id(), self.not_after_s);
        trust::write_certificate(&identity.with_extension("cert"), &cert)?;
        Ok(())
    }
}

/// What every node's config shares.
struct Configs {
    dir: PathBuf,
    /// The protocol section, as JSON (a YAML flow mapping).
    protocol: String,
    xdp: bool,
    /// The trust anchor's public file, with link security.
    anchor: Option<PathBuf>,
}

impl Configs {
    /// Writes node `n`'s config to `path`: it runs as `node_id` with node `n`'s key and
    /// (with an anchor) node `node_id`'s certificate, which is its own unless it poses as
    /// another node.
    fn write(&self, path: &Path, n: u32, node_id: u32, ifaces: &[String]) -> Result<(), MeshError> {
        let security = match &self.anchor {
            Some(a) => {
                let cert = self.dir.join(format!("node-{node_id}.cert"));
                format!("security: {{ anchor: {}, certificate: {} }}\n", a.display(), cert.display())
            }
            None => String::new(),
        };
        let text = format!(
            "# written by x0 live\nnode_id: {node_id}\nidentity: {}\ninterfaces: [{}]\nmetrics: {METRICS}\nevents: {EVENTS}\nxdp: {}\nprotocol: {}\n{security}",
            self.dir.join(format!("node-{n}.key")).display(),
            ifaces.join(", "),
            self.xdp,
            self.protocol,
        );
        std::fs::write(path, text).map_err(|source| MeshError::Write { path: path.into(), source })
    }
}

impl Mesh {
    /// Builds the namespaces and links for `nodes` nodes joined by `links` (node pairs, in
    /// link-index order) and writes each node's config into `dir`. Starts nothing.
    pub fn build(
        binary: &Path,
        dir: &Path,
        nodes: u32,
        links: &[(u32, u32)],
        setup: &NodeSetup<'_>,
        events: mpsc::Sender<(u32, StreamItem)>,
    ) -> Result<Mesh, MeshError> {
        let NodeSetup { protocol, security, xdp } = *setup;
        let mut lab = Lab::new("live")?;
        let wiring = lab.wire(nodes, links)?;
        let mut members: Vec<Member> = wiring
            .namespaces
            .iter()
            .zip(wiring.ifaces)
            .map(|(&ns, ifaces)| Member { ns, config: PathBuf::new(), child: None, control: Mutex::new(None), ifaces })
            .collect();
        let authority = security.map(|s| Authority::new(dir, s)).transpose()?;
        let configs = Configs {
            dir: dir.into(),
            protocol: serde_json::to_string(protocol).expect("the protocol config serializes"),
            xdp,
            anchor: authority.as_ref().map(|a| a.anchor_file.clone()),
        };
        for (i, m) in members.iter_mut().enumerate() {
            m.config = dir.join(format!("node-{i}.yaml"));
            // Every run is a fresh mesh: a key left by an earlier run (maybe of an older
            // format) is not this run's node, and nothing in these new namespaces can route
            // through that run's nodes, so its notes of being alive would only impose the
            // boot hold-down for nothing.
            let identity = dir.join(format!("node-{i}.key"));
            for stale in [identity.clone(), crate::alive::path(&identity)] {
                match std::fs::remove_file(&stale) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(MeshError::Write { path: stale, source: e }),
                    _ => {}
                }
            }
            if let Some(a) = &authority {
                a.certify(i as u32, &identity)?;
            }
            configs.write(&m.config, i as u32, i as u32, &m.ifaces)?;
        }
        Ok(Mesh {
            lab,
            binary: binary.into(),
            members,
            links: wiring.ends,
            configs,
            replays: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            events,
            followers: Vec::new(),
        })
    }

    pub fn links(&self) -> &[[End; 2]] {
        &self.links
    }

    /// Whether node `n` has any link: a node without one has nothing to run on.
    pub fn is_linked(&self, n: u32) -> bool {
        !self.members[n as usize].ifaces.is_empty()
    }

    /// Starts node `n`'s process and, the first time, the thread that follows its event
    /// stream (through restarts: it reconnects whenever the stream ends).
    pub fn start(&mut self, n: u32) -> Result<(), MeshError> {
        let config = self.members[n as usize].config.clone();
        self.spawn(n, &config, &[])
    }

    /// Starts node `n`'s process as an impostor of node `victim` (Byzantine fault
    /// injection): it claims the victim's id and presents the victim's certificate, which
    /// is public, but holds only its own key. Needs link security.
    pub fn start_impostor(&mut self, n: u32, victim: u32) -> Result<(), MeshError> {
        if self.configs.anchor.is_none() {
            return Err(MeshError::Node { node: n, what: "can pose as another node only with link security".into() });
        }
        let config = self.configs.dir.join(format!("node-{n}-as-{victim}.yaml"));
        self.configs.write(&config, n, victim, &self.members[n as usize].ifaces)?;
        self.spawn(n, &config, &["--impostor"])
    }

    fn spawn(&mut self, n: u32, config: &Path, extra: &[&str]) -> Result<(), MeshError> {
        let m = &self.members[n as usize];
        if m.ifaces.is_empty() {
            return Err(MeshError::Node { node: n, what: "has no links; x0-node needs at least one interface".into() });
        }
        let config = config.display().to_string();
        let mut args = vec![config.as_str(), "--log-level", "warn"];
        args.extend_from_slice(extra);
        let child = self.lab.spawn(m.ns, &self.binary.display().to_string(), &args, Stdio::inherit())?;
        let first = self.members[n as usize].child.replace(child).is_none();
        if first {
            self.follow(n)?;
        }
        Ok(())
    }

    fn follow(&mut self, n: u32) -> Result<(), MeshError> {
        let (tx, stop) = (self.events.clone(), self.stop.clone());
        let follower = self.lab.spawn_in_namespace(self.members[n as usize].ns, &format!("events-{n}"), move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok(stream) = TcpStream::connect(EVENTS) else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
                let mut lines = BufReader::new(stream);
                let mut line = String::new();
                while !stop.load(Ordering::Relaxed) {
                    line.clear();
                    match lines.read_line(&mut line) {
                        Ok(0) => break,
                        Ok(_) => {
                            let item = match serde_json::from_str::<EventRecord>(line.trim()) {
                                Ok(r) => StreamItem::Event(r),
                                Err(_) => match serde_json::from_str::<serde_json::Value>(line.trim()) {
                                    Ok(v) if v.get("lagged").is_some() => StreamItem::Lagged(v["lagged"].as_u64().unwrap_or(0)),
                                    _ => StreamItem::Bad(format!("unreadable event line {:?}", line.trim())),
                                },
                            };
                            if tx.send((n, item)).is_err() {
                                return;
                            }
                        }
                        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                        Err(_) => break,
                    }
                }
            }
        })?;
        self.followers.push(follower);
        Ok(())
    }

    /// Waits until every started node answers on its metrics address.
    pub fn wait_ready(&self) -> Result<(), MeshError> {
        let deadline = Instant::now() + START_TIMEOUT;
        for (n, m) in self.members.iter().enumerate().filter(|(_, m)| m.child.is_some()) {
            loop {
                let up = self.lab.in_namespace(m.ns, || TcpStream::connect(METRICS).is_ok())?;
                if up {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(MeshError::Node { node: n as u32, what: format!("did not come up within {START_TIMEOUT:?}") });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    /// Sends `signal` to node `n`'s process (SIGKILL: crash, SIGSTOP/SIGCONT: pause).
    pub fn signal(&mut self, n: u32, signal: libc::c_int) {
        if let Some(child) = self.members[n as usize].child {
            self.lab.signal(child, signal);
            if signal == libc::SIGKILL {
                self.lab.wait(child, Duration::from_secs(2));
            }
        }
    }

    /// Node `n`'s host goes dark (`Lab::go_dark`); its process keeps running, cut off.
    pub fn go_dark(&self, n: u32) -> Result<(), MeshError> {
        Ok(self.lab.go_dark(self.members[n as usize].ns)?)
    }

    /// CPU time node `n`'s current process has used so far, if it is running.
    pub fn cpu_time(&self, n: u32) -> Option<Duration> {
        self.lab.cpu_time(self.members[n as usize].child?)
    }

    pub fn set_link(&self, link: usize, up: bool) -> Result<(), MeshError> {
        let end = &self.links[link][0];
        Ok(self.lab.set_link(self.members[end.node as usize].ns, &end.ifname, up)?)
    }

    /// Puts a replay attacker on link `link`: every protocol frame either end sends is sent
    /// again `delay` later, from the same address.
    pub fn start_replay(&mut self, link: usize, delay: Duration) -> Result<(), MeshError> {
        let mut replay = Replay {
            stop: Arc::new(AtomicBool::new(false)),
            counters: Arc::default(),
            failure: Arc::default(),
            threads: Vec::with_capacity(2),
        };
        for end in &self.links[link] {
            let (ifname, stop, counters, failure) =
                (end.ifname.clone(), replay.stop.clone(), replay.counters.clone(), replay.failure.clone());
            let thread = self.lab.spawn_in_namespace(self.members[end.node as usize].ns, &format!("replay-{link}"), move || {
                if let Err(e) = replay::tap(&ifname, DEFAULT_PORT, delay, &stop, &counters) {
                    *failure.lock().expect("failure lock") = Some(e.to_string());
                }
            })?;
            replay.threads.push(thread);
        }
        self.replays.push((link, replay));
        Ok(())
    }

    /// Takes the replay attacker off link `link`; how many frames it captured and replayed.
    pub fn stop_replay(&mut self, link: usize) -> Result<(u64, u64), MeshError> {
        let Some(i) = self.replays.iter().position(|(l, _)| *l == link) else { return Ok((0, 0)) };
        let (_, replay) = self.replays.swap_remove(i);
        let end = &self.links[link][0];
        replay.finish().map_err(|why| MeshError::Node { node: end.node, what: format!("replay tap on link {link}: {why}") })
    }

    /// Which node sends from which address: every link end's address at the protocol port,
    /// so that the metrics can name whom an isolation hit.
    pub fn address_book(&self) -> Result<AddressBook, MeshError> {
        let mut book = AddressBook::default();
        for end in self.links.iter().flatten() {
            let addr = PeerAddr { ip: self.address(end)?.octets(), port: DEFAULT_PORT };
            book.0.insert(addr, NodeId(end.node));
        }
        Ok(book)
    }

    /// The link-local address of a link end.
    pub fn address(&self, end: &End) -> Result<Ipv6Addr, MeshError> {
        Ok(self.lab.address(self.members[end.node as usize].ns, &end.ifname)?)
    }

    /// `POST path` to node `n`'s control endpoint; the response's head and body. The
    /// connection is kept for the next request (a thread enters the namespace only to open
    /// one), and opened anew once if the node restarted since.
    pub fn post(&self, n: u32, path: &str) -> Result<String, MeshError> {
        self.request(n, "POST", path)
    }

    /// `method path` to node `n`'s control endpoint (`GET /metrics`, say), as [`Mesh::post`].
    pub fn request(&self, n: u32, method: &str, path: &str) -> Result<String, MeshError> {
        let mut conn = self.members[n as usize].control.lock().expect("control connection lock");
        let mut last = None;
        for _ in 0..2 {
            let stream = match conn.take() {
                Some(s) => s,
                None => self.lab.in_namespace(self.members[n as usize].ns, || -> std::io::Result<BufReader<TcpStream>> {
                    let s = TcpStream::connect(METRICS)?;
                    s.set_nodelay(true)?;
                    s.set_read_timeout(Some(Duration::from_secs(2)))?;
                    Ok(BufReader::new(s))
                })?
                .map_err(|e| MeshError::Node { node: n, what: format!("{method} {path}: {e}") })?,
            };
            match exchange(stream, method, path) {
                Ok((reply, stream)) => {
                    *conn = stream;
                    return Ok(reply);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(MeshError::Node { node: n, what: format!("{method} {path}: {}", last.expect("a failed attempt")) })
    }

    /// Stops every node with SIGTERM (a clean stop), waiting briefly for each.
    pub fn stop(&mut self) {
        for m in &self.members {
            if let Some(child) = m.child {
                self.lab.signal(child, libc::SIGCONT);
                self.lab.signal(child, libc::SIGTERM);
            }
        }
        for i in 0..self.members.len() {
            if let Some(child) = self.members[i].child {
                self.lab.wait(child, Duration::from_secs(2));
            }
        }
        self.stop.store(true, Ordering::Relaxed);
        for follower in self.followers.drain(..) {
            if let Ok(Err(e)) = follower.join() {
                eprintln!("warning: an event stream was not followed: {e}");
            }
        }
    }
}

/// One request and its response on a kept-alive connection; the connection is handed back
/// unless the node said it closes it.
fn exchange(mut stream: BufReader<TcpStream>, method: &str, path: &str) -> std::io::Result<(String, Option<BufReader<TcpStream>>)> {
    // One write: pieces would meet Nagle's algorithm and the peer's delayed ACK (40 ms).
    stream.get_mut().write_all(format!("{method} {path} HTTP/1.1\r\nhost: x0\r\n\r\n").as_bytes())?;
    let mut reply = String::new();
    let mut length = 0usize;
    let mut close = false;
    loop {
        let start = reply.len();
        if stream.read_line(&mut reply)? == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the node closed the connection"));
        }
        let line = reply[start..].trim().to_ascii_lowercase();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("content-length:") {
            length = v.trim().parse().map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "bad content-length"))?;
        }
        close |= line == "connection: close";
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body)?;
    reply.push_str(&String::from_utf8_lossy(&body));
    Ok((reply, (!close).then_some(stream)))
}

impl Drop for Mesh {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // The taps hold sockets in the namespaces: they go before the lab removes those.
        for (_, replay) in self.replays.drain(..) {
            let _ = replay.finish();
        }
    }
}

/// A replay attacker on both ends of one link (`crate::replay::tap`).
struct Replay {
    stop: Arc<AtomicBool>,
    counters: Arc<TapCounters>,
    failure: Arc<Mutex<Option<String>>>,
    threads: Vec<std::thread::JoinHandle<Result<(), LabError>>>,
}

impl Replay {
    /// Stops the taps; what they captured and replayed, or why a tap failed.
    fn finish(self) -> Result<(u64, u64), String> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e.to_string()),
                Err(_) => return Err("a replay tap panicked".into()),
            }
        }
        if let Some(why) = self.failure.lock().expect("failure lock").take() {
            return Err(why);
        }
        Ok((self.counters.captured.load(Ordering::Relaxed), self.counters.replayed.load(Ordering::Relaxed)))
    }
}
