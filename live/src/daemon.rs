//! The x0-node event loop: real time and real datagrams into the core's `Node`, frames and
//! events out. It decides nothing about the protocol; it only moves bytes and time.

use crate::alive::{self, AliveNote};
use crate::config::NodeConfig;
use crate::identity;
use crate::kernel::KernelSampler;
use crate::trust;
use crate::metrics::Metrics;
use crate::net::{self, Iface};
use crate::serve;
use crate::xdp::XdpHandle;
use anyhow::Context;
use std::net::{Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tracing::{debug, info, warn};
use x0tta6bl4::eventlog::EventRecord;
use x0tta6bl4::ids::{Dest, IfIndex, NodeId};
use x0tta6bl4::metrics::TimedEvent;
use x0tta6bl4::node::{Behaviour, Command, CommandError, Event, Incident, Node};
use x0tta6bl4::pq::CryptoRng;
use x0tta6bl4::scenario::FLOOD_FRAME_LEN;
use x0tta6bl4::time::{Instant, NodeClock};

/// Event lines a slow stream client may fall behind by before it misses some (and is told
/// how many).
const EVENT_STREAM_BACKLOG: usize = 4096;
/// The longest the loop sleeps even if the node asks for nothing sooner: keeps the health
/// heartbeat fresh on an idle node.
const IDLE_WAKE: Duration = Duration::from_secs(1);
/// Largest datagram read; the core's frames are far smaller, so anything longer is cut and
/// then refused by the decoder.
const RECV_BUFFER_BYTES: usize = 65_536;

/// How long after start XDP is loaded. Loading costs about 35 ms of CPU (aya parses the
/// kernel's BTF each time) that routing never waits for; a host booting, or 49 daemons
/// starting together on two cores, needs that CPU for its first routes. Measured in
/// `x0 bench peer`: starting 49 daemons took 0.29-0.45 s with XDP loading at once and
/// 0.10-0.14 s with it a second later. Until then the node runs as in userspace-only mode,
/// and the lab's XDP controls wait.
const XDP_ATTACH_DELAY: Duration = Duration::from_secs(1);

/// Commands queued for the node from outside (HTTP) before the loop refuses more.
const COMMAND_QUEUE_MAX: usize = 256;
/// Port-unreachable reports waiting for the loop. A dead neighbour needs two; a burst
/// beyond this is dropped (Linux itself sends a neighbour at most six at once).
const UNREACHABLE_QUEUE_MAX: usize = 64;

/// A command for the node, with where to say how it went.
pub struct Control {
    pub command: ControlCommand,
    pub reply: oneshot::Sender<Result<(), CommandError>>,
}

#[derive(Copy, Clone, Debug)]
pub enum ControlCommand {
    /// An end-to-end probe to `dst`; its outcome arrives as a probe event with `id`.
    Probe { dst: NodeId, id: u64 },
    /// A clock fault: the clock the protocol reads steps by `skew_ns` and its rate changes
    /// by `drift_ppm` (added to any drift already set). Fault injection, as in the
    /// simulator; the event stream keeps real Unix time.
    Clock { skew_ns: i64, drift_ppm: i64 },
    /// Back from a stop that kept state (the lab's restart with `state: keep`): neighbours get
    /// a fresh grace period, hellos and routes go out now (`Node::resume`).
    Resume,
    /// Byzantine fault injection: the node forges routes and drops transit (blackhole),
    /// drops a share of transit (grey hole), or behaves again (`Node::set_behaviour`).
    Behaviour(Behaviour),
    /// Byzantine fault injection: send `rate_per_s` frames of random bytes per second on
    /// every interface from the protocol's own socket (0 stops), as the simulator's
    /// `malformed_flood` does. The bytes are made here; the node never sees them.
    Flood { rate_per_s: u32 },
}

/// A malformed flood under way: its rate and when the next round of frames is due.
struct Flood {
    interval: Duration,
    next: tokio::time::Instant,
    rng: CryptoRng,
}

impl Flood {
    /// Sends one random frame of `FLOOD_FRAME_LEN` bytes to every neighbour on every
    /// interface, and schedules the next round.
    fn send(&mut self, ifaces: &[Iface], port: u16, frame: &mut Vec<u8>) {
        let span = FLOOD_FRAME_LEN.end() - FLOOD_FRAME_LEN.start() + 1;
        for iface in ifaces {
            let mut len = [0u8; 2];
            self.rng.fill(&mut len);
            frame.resize(FLOOD_FRAME_LEN.start() + usize::from(u16::from_be_bytes(len)) % span, 0);
            self.rng.fill(frame);
            // Like any send here: a full socket buffer drops the frame.
            let _ = net::send_to(&iface.socket, frame, iface.multicast(port));
        }
        self.next += self.interval;
    }
}

/// What the HTTP endpoints and the event stream share with the loop.
pub struct Shared {
    pub metrics: Mutex<Metrics>,
    /// The XDP program, when attached; `None` in userspace-only mode, and while attaching.
    pub xdp: Mutex<Option<XdpHandle>>,
    /// Turns true once XDP is attached or known unavailable; XDP controls wait for it.
    pub xdp_settled: watch::Receiver<bool>,
    /// Unix milliseconds of the loop's last turn: `/health` fails when it goes stale.
    pub heartbeat_ms: AtomicU64,
    pub events: broadcast::Sender<Arc<str>>,
    pub commands: mpsc::Sender<Control>,
}

/// The core's random stream for this run: the identity's secret mixed with fresh OS
/// randomness, so that every start draws a new incarnation number (neighbours must see a
/// restart as one) while nothing about the identity leaks from what the node sends.
fn boot_seed(secret: &[u8; 32]) -> anyhow::Result<[u8; 32]> {
    let mut fresh = [0u8; 32];
    getrandom::fill(&mut fresh).map_err(|e| anyhow::anyhow!("the operating system has no randomness to offer: {e}"))?;
    Ok(std::array::from_fn(|i| secret[i] ^ fresh[i]))
}

/// Unix time in nanoseconds: the clock event records carry, shared by every node of a
/// machine (and by `x0 live`, which rebases them to its run's start).
pub fn unix_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The core's clock: nanoseconds since the daemon started, from the monotonic clock, as
/// read through an injectable skew and drift (`NodeClock`, the simulator's arithmetic).
struct Clock {
    start: tokio::time::Instant,
    faults: NodeClock,
}

impl Clock {
    fn real_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn now(&self) -> Instant {
        self.faults.local(self.real_ns())
    }

    fn to_tokio(&self, t: Instant) -> tokio::time::Instant {
        let cap = self.start.elapsed() + IDLE_WAKE;
        self.start + Duration::from_nanos(self.faults.global(t)).min(cap)
    }
}

enum Input {
    Datagram(usize, std::io::Result<(usize, SocketAddr)>),
    Unreachable(net::Unreachable),
    Timer,
    /// The next round of a malformed flood is due.
    Flood,
    Control(Control),
    Stop(&'static str),
}

/// Runs the node until SIGINT or SIGTERM.
pub async fn run(cfg: NodeConfig) -> anyhow::Result<()> {
    let identity = identity::load_or_create(&cfg.identity)?;
    info!(key_id = %identity.key.public().key_id().to_hex(), file = %cfg.identity.display(), "identity (ML-DSA-65)");
    let mut ifaces = Vec::with_capacity(cfg.interfaces.len());
    for name in &cfg.interfaces {
        ifaces.push(Iface::open(name, cfg.port)?);
    }
    // Static peers, per interface: greeted by unicast beside every multicast frame.
    let statics: Vec<Vec<SocketAddr>> = ifaces
        .iter()
        .map(|i| {
            let on = cfg.peers.iter().filter(|p| p.interface == i.name);
            on.map(|p| SocketAddr::V6(std::net::SocketAddrV6::new(p.address, p.port, 0, i.index))).collect()
        })
        .collect();
    let mut clock = Clock { start: tokio::time::Instant::now(), faults: NodeClock::default() };
    let seed = boot_seed(&identity.secret_seed)?;
    let node = match &cfg.security {
        Some(policy) => {
            let trust = trust::build(policy, cfg.node_id, identity, unix_nanos() / 1_000_000_000, cfg.impostor)?;
            if cfg.impostor {
                warn!("--impostor: presenting a certificate that is not this key's (fault injection)");
            }
            info!(policy = if trust.certificate.is_some() { "anchor" } else { "allowlist" }, "link security on: neighbours are admitted by handshake, frames sealed");
            Node::new_secure(cfg.protocol.clone(), trust, seed, clock.now())
        }
        None => {
            warn!("no `security:` section: frames travel unauthenticated and any node on the link is believed");
            Node::new(cfg.node_id, cfg.protocol.clone(), seed, clock.now())
        }
    };
    let mut node = node.context("starting the protocol node")?;
    let alive_file = alive::path(&cfg.identity);
    let gone_for = alive::previous_run(&alive_file);
    node.set_previous_run(gone_for);
    match gone_for {
        None => info!("first run on this identity: routing without a boot hold-down"),
        Some(d) => info!(gone_ms = d.as_millis() as u64, "previous run on this identity found"),
    }
    let (mut alive, mut next_alive_note) = (AliveNote::open(alive_file), tokio::time::Instant::now());
    for _ in &ifaces {
        node.add_interface(clock.now());
    }
    let (commands, mut command_rx) = mpsc::channel(COMMAND_QUEUE_MAX);
    let (reports, mut unreachable_rx) = mpsc::channel(UNREACHABLE_QUEUE_MAX);
    for (i, iface) in ifaces.iter().enumerate() {
        tokio::spawn(net::watch_unreachable(i, iface.socket.clone(), reports.clone()));
    }
    drop(reports);
    let (settled, xdp_settled) = watch::channel(false);
    let shared = Arc::new(Shared {
        commands,
        metrics: Mutex::new(Metrics::default()),
        xdp: Mutex::new(None),
        xdp_settled,
        heartbeat_ms: AtomicU64::new(unix_nanos() / 1_000_000),
        events: broadcast::channel(EVENT_STREAM_BACKLOG).0,
    });
    // Loading and attaching XDP takes tens of milliseconds of CPU and kernel time. Neither
    // the protocol nor the endpoints wait for it (a mesh of nodes starting together would
    // wait for all of them), and it starts only after XDP_ATTACH_DELAY; XDP controls
    // alone wait until it is settled.
    let (xdp_wanted, names, port, attaching) = (cfg.xdp, cfg.interfaces.clone(), cfg.port, shared.clone());
    tokio::spawn(async move {
        let xdp = if xdp_wanted {
            tokio::time::sleep(XDP_ATTACH_DELAY).await;
            let attached = tokio::task::spawn_blocking(move || {
                // At the lowest priority (per thread on Linux): most of the work is aya
                // parsing the kernel's BTF, and a mesh starting together on few cores should
                // route first and load XDP with what CPU is left.
                // SAFETY: setpriority on the calling thread has no memory-safety preconditions.
                unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                let h = XdpHandle::attach(&names, port)?;
                let modes: Vec<String> = names.iter().zip(&h.modes).map(|(n, m)| format!("{n}: {m}")).collect();
                Ok::<_, crate::xdp::XdpError>((h, modes))
            });
            match attached.await {
                Ok(Ok((h, modes))) => {
                    info!("XDP attached ({})", modes.join(", "));
                    Some(h)
                }
                Ok(Err(e)) => {
                    warn!("XDP unavailable ({e}); running in userspace-only mode: no kernel counters, quarantine or loss injection");
                    None
                }
                Err(e) => {
                    warn!("XDP attach did not finish ({e}); running in userspace-only mode");
                    None
                }
            }
        } else {
            info!("XDP off by config: userspace-only mode");
            None
        };
        *attaching.xdp.lock().expect("xdp lock") = xdp;
        let _ = settled.send(true);
    });
    if let Some(addr) = cfg.metrics {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding metrics address {addr}"))?;
        info!("metrics at http://{}/metrics, health at /health", listener.local_addr()?);
        tokio::spawn(serve::http(listener, shared.clone()));
    }
    if let Some(addr) = cfg.events {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding event stream address {addr}"))?;
        info!("event stream (JSON lines) at tcp://{}", listener.local_addr()?);
        tokio::spawn(serve::events(listener, shared.clone()));
    }
    let names: Vec<&str> = ifaces.iter().map(|i| i.name.as_str()).collect();
    info!(node = %cfg.node_id, incarnation = node.incarnation(), port = cfg.port, "running on {}", names.join(", "));

    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut buf = vec![0u8; RECV_BUFFER_BYTES];
    let mut out = Vec::with_capacity(2048);
    let mut first = 0;
    let mut flood: Option<Flood> = None;
    let mut kernel = KernelSampler::default();
    let isolation = cfg.protocol.security.isolation;
    loop {
        drain(&mut node, &ifaces, &statics, cfg.port, &shared, &mut out, isolation);
        shared.heartbeat_ms.store(unix_nanos() / 1_000_000, Ordering::Relaxed);
        let now = tokio::time::Instant::now();
        if now >= next_alive_note {
            alive.write();
            next_alive_note = now + alive::NOTE_INTERVAL;
        }
        let wake = clock.to_tokio(node.poll_timeout());
        let flood_due = flood.as_ref().map(|f| f.next);
        let input = tokio::select! {
            biased;
            _ = sigterm.recv() => Input::Stop("SIGTERM"),
            _ = sigint.recv() => Input::Stop("SIGINT"),
            Some(c) = command_rx.recv() => Input::Control(c),
            Some(u) = unreachable_rx.recv() => Input::Unreachable(u),
            _ = tokio::time::sleep_until(flood_due.unwrap_or(wake)), if flood_due.is_some() => Input::Flood,
            (i, r) = std::future::poll_fn(|cx| net::poll_recv(&ifaces, first, cx, &mut buf)) => Input::Datagram(i, r),
            _ = tokio::time::sleep_until(wake) => Input::Timer,
        };
        match input {
            Input::Stop(why) => {
                info!("{why}: stopping");
                return Ok(());
            }
            Input::Timer => {
                // The sockets are empty (they come first above): the kernel's counts can be
                // set beside what the node received.
                if let Some(xdp) = shared.xdp.lock().expect("xdp lock").as_ref() {
                    kernel.sample(&mut node, clock.now(), xdp);
                }
                node.handle_timeout(clock.now());
            }
            Input::Control(Control { command: ControlCommand::Probe { dst, id }, reply }) => {
                let result = node.handle_command(clock.now(), Command::Probe { dst, id });
                // The asker may have given up; the probe went out (or not) either way.
                let _ = reply.send(result);
            }
            Input::Control(Control { command: ControlCommand::Resume, reply }) => {
                node.resume(clock.now());
                info!("resumed with the state kept");
                let _ = reply.send(Ok(()));
            }
            Input::Flood => {
                if let Some(f) = flood.as_mut() {
                    f.send(&ifaces, cfg.port, &mut out);
                }
            }
            Input::Control(Control { command: ControlCommand::Behaviour(b), reply }) => {
                node.set_behaviour(clock.now(), b);
                warn!(behaviour = ?b, "Byzantine fault injected: the node now behaves as {b:?}");
                let _ = reply.send(Ok(()));
            }
            Input::Control(Control { command: ControlCommand::Flood { rate_per_s }, reply }) => {
                flood = match rate_per_s {
                    0 => None,
                    r => Some(Flood {
                        interval: Duration::from_secs(1) / r,
                        next: tokio::time::Instant::now(),
                        rng: identity::os_rng()?,
                    }),
                };
                warn!(rate_per_s, "Byzantine fault injected: malformed flood at {rate_per_s} frames/s per interface");
                let _ = reply.send(Ok(()));
            }
            Input::Control(Control { command: ControlCommand::Clock { skew_ns, drift_ppm }, reply }) => {
                clock.faults.adjust(clock.real_ns(), skew_ns, drift_ppm);
                warn!(skew_ns, drift_ppm, "clock fault injected: the protocol's clock now reads {:?}", clock.now());
                let _ = reply.send(Ok(()));
            }
            Input::Datagram(i, Ok((len, from))) => {
                first = (i + 1) % ifaces.len();
                let from = net::peer_addr(from);
                kernel.handed(from.ip);
                node.handle_datagram(clock.now(), IfIndex(i as u16), from, &buf[..len]);
            }
            Input::Unreachable(u) => node.handle_unreachable(clock.now(), IfIndex(u.iface as u16), u.dst, &u.quoted),
            // The socket reporting an ICMP error the error queue reader has (or will have)
            // taken, not a failed receive.
            Input::Datagram(_, Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
            Input::Datagram(i, Err(e)) => {
                first = (i + 1) % ifaces.len();
                shared.metrics.lock().expect("metrics lock").rx_errors.inc();
                warn!(interface = %ifaces[i].name, "receive failed: {e}");
            }
        }
    }
}

/// Sends every frame the node has queued, publishes its events, quarantines in XDP what
/// the node isolated unread (for its `isolation`), and updates the metrics.
fn drain(
    node: &mut Node,
    ifaces: &[Iface],
    statics: &[Vec<SocketAddr>],
    port: u16,
    shared: &Arc<Shared>,
    out: &mut Vec<u8>,
    isolation: Duration,
) {
    let mut send_errors = 0u64;
    while let Some(tx) = node.poll_transmit(out) {
        let iface = &ifaces[tx.iface.index()];
        let mut send = |to: SocketAddr| {
            // Non-blocking: a full socket buffer drops the frame, as a full link would.
            if let Err(e) = net::send_to(&iface.socket, out, to) {
                send_errors += 1;
                debug!(interface = %iface.name, %to, "send failed: {e}");
            }
        };
        match tx.dest {
            Dest::Multicast => {
                send(iface.multicast(port));
                statics[tx.iface.index()].iter().for_each(|&p| send(p));
            }
            Dest::Unicast(peer) => send(iface.unicast(peer)),
        }
    }
    // Nothing above the core consumes application payloads yet; they are counted by the
    // node (data_delivered) and let go.
    while node.poll_delivery(out).is_some() {}
    while let Some(event) = node.poll_event() {
        log_event(&event);
        if let Event::Incident { incident: Incident::Isolated { addr, misbehaviour, .. }, .. } = event
            && misbehaviour.drops_frames()
        {
            quarantine(shared, Ipv6Addr::from(addr.ip), isolation);
        }
        let timed = TimedEvent { t: Instant::from_nanos(unix_nanos()), node: node.id(), event };
        let line = serde_json::to_string(&EventRecord::from(&timed)).expect("records serialize");
        // No subscriber is not an error: the stream is for whoever is listening.
        let _ = shared.events.send(Arc::from(line));
    }
    let mut m = shared.metrics.lock().expect("metrics lock");
    m.tx_errors.inc_by(send_errors);
    m.update(node);
}

/// Has the kernel drop everything from `peer` for `isolation`, as the node already does
/// after reading the frame's address: a flood then costs the kernel, not the protocol loop.
/// Without XDP the node's own drop stands alone.
fn quarantine(shared: &Arc<Shared>, peer: Ipv6Addr, isolation: Duration) {
    let set = move |shared: &Shared, blocked: bool| match shared.xdp.lock().expect("xdp lock").as_mut() {
        Some(xdp) => {
            if let Err(e) = xdp.set_blocked(peer, blocked) {
                warn!(%peer, "XDP blocklist: {e}");
            }
        }
        None if blocked => info!(%peer, "isolated in userspace only: XDP is not attached"),
        None => {}
    };
    set(shared, true);
    let shared = shared.clone();
    tokio::spawn(async move {
        tokio::time::sleep(isolation).await;
        set(&shared, false);
    });
}

fn log_event(e: &Event) {
    match *e {
        Event::Neighbour { iface, peer, state, .. } => info!(%iface, %peer, "neighbour {state:?}"),
        Event::Route { dest, next_hop, metric, .. } => debug!(%dest, ?next_hop, metric, "route"),
        Event::Probe { id, dst, outcome, .. } => debug!(id, %dst, ?outcome, "probe"),
        Event::Incident { incident, .. } => info!(?incident, "incident"),
    }
}
