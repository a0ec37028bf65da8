//! `x0 live`: a scenario on a real mesh. Every node is an x0-node process in its own network
//! namespace, every link a veth pair; faults are real (SIGKILL, SIGSTOP, `ip link set`, XDP
//! loss). Probes, fault picks and the metric definitions are the simulator's: the same
//! pairs, the same targets for the same seed, the same `Recorder`, the same report.

use crate::report::{RunReport, fault_rows};
use crate::run::{Finished, OutputArgs, present};
use anyhow::{Context, bail};
use clap::Args;
use std::collections::BinaryHeap;
use std::cmp::Reverse;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;
use x0_live::daemon::unix_nanos;
use x0_live::lab::is_root;
use x0_live::mesh::{Mesh, NodeSetup, StreamItem};
use x0_sim::{EngineStats, RunResult, Trace, faults, seed};
use x0tta6bl4::ids::NodeId;
use x0tta6bl4::metrics::{FaultRecord, GroundTruth, Recorder, RunCounters, TimedEvent};
use x0tta6bl4::node::{Event, NeighbourState, ProbeOutcome, StateBytes};
use x0tta6bl4::scenario::{FaultKind, Scenario, StateMode};
use x0tta6bl4::time::{Instant, duration_nanos};
use x0tta6bl4::trace::Fingerprint;

#[derive(Args)]
pub struct LiveArgs {
    /// The scenario YAML file (the same file `x0 run` takes).
    pub scenario: PathBuf,
    #[command(flatten)]
    pub output: OutputArgs,
    /// The x0-node binary [default: beside this x0].
    #[arg(long)]
    pub node_binary: Option<PathBuf>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Probe(u32),
    Inject(u32),
    Heal(u32),
    /// The next half-period of a link flap.
    Flap(u32),
}

/// One injection of a fault: which, when it heals, and what it touched once injected.
struct Instance {
    spec: u32,
    k: u32,
    heal_ns: Option<u64>,
    nodes: Vec<NodeId>,
    links: Vec<u32>,
    /// A link flap's links are down now.
    flap_down: bool,
}

#[derive(Copy, Clone, PartialEq, Eq)]
enum Status {
    Running,
    Stopped,
    Paused,
}

/// Nodes per core a live mesh ran without missing hellos on the 2-core VM: 100 nodes were
/// clean, and at 200 the kernel's share of the work (namespaces, veth, XDP) saturated both
/// cores and the detector reported 332 false positives (docs/PERFORMANCE.md, "Live mesh").
const LIVE_NODES_PER_CORE: u32 = 50;

/// Refuses, before building anything, what a real mesh on this kernel cannot do: every
/// fault kind runs live, but degradation other than loss needs netem.
fn check_supported(scenario: &Scenario) -> anyhow::Result<()> {
    for f in &scenario.faults {
        let FaultKind::Degrade(d) = &f.kind else { continue };
        let kernel_lacks = [
            ("latency", d.latency.is_some()),
            ("jitter", d.jitter.is_some()),
            ("bandwidth", d.bandwidth.is_some()),
            ("duplicate", d.duplicate.is_some()),
            ("reorder", d.reorder.is_some()),
            ("corrupt", d.corrupt.is_some()),
        ];
        if let Some((field, _)) = kernel_lacks.iter().find(|(_, set)| *set) {
            bail!(
                "fault `{}`: degrade `{field}` needs netem, which this kernel lacks; x0 live degrades links by \
                 loss only (in XDP). Drop `{field}` or run it in the simulator with x0 run",
                f.name
            );
        }
    }
    Ok(())
}

pub fn live(args: &LiveArgs) -> anyhow::Result<ExitCode> {
    let (scenario, topo) = x0_sim::load(&args.scenario)?;
    let out = args.output.out.clone().unwrap_or_else(|| PathBuf::from("results").join(format!("{}-live", scenario.name)));
    let out = crate::files::prepare_out(&out)?;
    let Finished { runs, rows, report } = run_live(&scenario, &topo, args.node_binary.as_deref(), out.path())?;
    present(&out, &runs, &rows, &report, &args.output, &scenario.name)?;
    Ok(if report.passed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The x0-node binary: `given`, or the one beside this x0.
pub fn node_binary(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let binary = match given {
        Some(b) => b.to_path_buf(),
        None => std::env::current_exe()?.with_file_name("x0-node"),
    };
    if !binary.exists() {
        bail!("{} not found; build it with `cargo build --release -p x0-live` or pass --node-binary", binary.display());
    }
    Ok(binary)
}

/// Runs `scenario` once (its first seed) on a namespace mesh; node configs and keys go to
/// `out/nodes`.
pub fn run_live(
    scenario: &Scenario,
    topo: &x0_sim::Topology,
    binary: Option<&Path>,
    out: &Path,
) -> anyhow::Result<Finished> {
    check_supported(scenario)?;
    if !is_root() {
        bail!("x0 live builds network namespaces and veth links, which needs root; run it as root");
    }
    let binary = node_binary(binary)?;
    let cores = std::thread::available_parallelism().map_or(1, |c| u32::try_from(c.get()).unwrap_or(u32::MAX));
    let crowded = (topo.node_count() > LIVE_NODES_PER_CORE.saturating_mul(cores)).then(|| {
        format!(
            "live mesh: {} nodes on {cores} core(s), more than the {LIVE_NODES_PER_CORE} per core that ran without missed \
             hellos on the machine this was measured on (docs/PERFORMANCE.md, \"Live mesh\"); late detections and false \
             positives may be this machine's, not the protocol's",
            topo.node_count()
        )
    });
    if let Some(w) = &crowded {
        eprintln!("warning: {w}");
    }
    let node_dir = out.join("nodes");
    std::fs::create_dir_all(&node_dir).with_context(|| format!("creating {}", node_dir.display()))?;

    let n = topo.node_count();
    let edges = topo.edge_list();
    let protocol = topo.node_protocol(&scenario.protocol);
    // Ctrl-C and SIGTERM end the run early but cleanly: the mesh is torn down on the way
    // out, as on any error or panic, so no namespace or process is left behind.
    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, interrupted.clone()).context("installing the signal handler")?;
    }
    let (tx, rx) = mpsc::channel();
    let pairs: Vec<(u32, u32)> = edges.iter().map(|&(a, b)| (a.0, b.0)).collect();
    let started = std::time::Instant::now();
    let mut mesh = Mesh::build(&binary, &node_dir, n, &pairs, &NodeSetup { protocol: &protocol, security: scenario.security.as_ref(), xdp: true }, tx)?;
    // A node without links (some topology files list one) has no interface to run on: it
    // stays down, and probes to or from it are not judged, having no path.
    let unlinked: Vec<u32> = (0..n).filter(|&i| !mesh.is_linked(i)).collect();
    if !unlinked.is_empty() {
        eprintln!("note: node(s) {unlinked:?} have no links and are not started");
    }
    for i in 0..n {
        if mesh.is_linked(i) {
            mesh.start(i)?;
        }
    }
    mesh.wait_ready()?;
    let addresses = mesh.address_book()?;
    let mut live = Live::new(scenario, topo, mesh, rx, interrupted.clone());
    live.rec.set_addresses(addresses);
    let run = live.run()?;
    if interrupted.load(Ordering::Relaxed) {
        bail!("interrupted; the mesh was taken down and nothing was written");
    }
    let wall = started.elapsed();
    let runs = vec![(run, wall)];
    let rows = fault_rows(&runs);
    let mut report = RunReport::new(scenario, &runs, &rows, 1, wall);
    // What only the simulator can see is not faked as zero without saying so.
    report.warnings.push(
        "live mesh: forwarding loops, route stretch and control overhead are not measured (they need every \
         node's tables at one instant, which only the simulator has); loops and overhead read 0"
            .into(),
    );
    report.warnings.extend(crowded);
    Ok(Finished { runs, rows, report })
}

struct Live<'a> {
    scenario: &'a Scenario,
    topo: &'a x0_sim::Topology,
    mesh: Mesh,
    rx: mpsc::Receiver<(u32, StreamItem)>,
    gt: GroundTruth,
    rec: Recorder,
    /// When each probed pair's first probe goes out, ns into the run.
    phases: Vec<u64>,
    status: Vec<Status>,
    instances: Vec<Instance>,
    /// Per link, the loss each partition or degrade instance puts on it.
    losses: Vec<Vec<(u32, f64)>>,
    events: Vec<TimedEvent>,
    t0_unix: u64,
    t0: std::time::Instant,
    lagged: u64,
    unsent_probes: u64,
    interrupted: Arc<AtomicBool>,
}

impl<'a> Live<'a> {
    fn new(
        scenario: &'a Scenario,
        topo: &'a x0_sim::Topology,
        mesh: Mesh,
        rx: mpsc::Receiver<(u32, StreamItem)>,
        interrupted: Arc<AtomicBool>,
    ) -> Self {
        let n = topo.node_count();
        let workload = x0_sim::probe_workload(scenario, n, scenario.seed);
        let phases = workload.iter().map(|&(_, phase)| phase).collect();
        let status = (0..n).map(|i| if mesh.is_linked(i) { Status::Running } else { Status::Stopped }).collect();
        Live {
            scenario,
            topo,
            mesh,
            rx,
            gt: GroundTruth::new(n, &topo.edge_list()),
            rec: Recorder::new(Instant::from_nanos(duration_nanos(scenario.warmup)), workload.iter().map(|w| w.0).collect()),
            phases,
            status,
            instances: Vec::new(),
            losses: vec![Vec::new(); topo.edge_count()],
            events: Vec::new(),
            t0_unix: unix_nanos(),
            t0: std::time::Instant::now(),
            lagged: 0,
            unsent_probes: 0,
            interrupted,
        }
    }

    fn now(&self) -> u64 {
        duration_nanos(self.t0.elapsed())
    }

    fn run(mut self) -> anyhow::Result<RunResult> {
        let s = self.scenario;
        let end = duration_nanos(s.duration);
        let mut queue = BinaryHeap::new();
        let interval = duration_nanos(s.workload.probe_interval);
        for (pair, &phase) in self.phases.iter().enumerate() {
            queue.push(Reverse((phase, Action::Probe(pair as u32))));
        }
        for (spec, fault) in s.faults.iter().enumerate() {
            for (k, t) in fault.injection_times(s.duration).into_iter().enumerate() {
                let heal = fault.heal_time(t).map(duration_nanos);
                let i = self.instances.len() as u32;
                self.instances.push(Instance {
                    spec: spec as u32,
                    k: k as u32,
                    heal_ns: heal,
                    nodes: Vec::new(),
                    links: Vec::new(),
                    flap_down: false,
                });
                queue.push(Reverse((duration_nanos(t), Action::Inject(i))));
                if let Some(h) = heal.filter(|&h| h < end) {
                    queue.push(Reverse((h, Action::Heal(i))));
                }
            }
        }
        while let Some(&Reverse((t, action))) = queue.peek() {
            if t > end || self.interrupted.load(Ordering::Relaxed) {
                break;
            }
            let now = self.now();
            if now < t {
                self.drain_events();
                std::thread::sleep(Duration::from_nanos(t - now).min(Duration::from_millis(5)));
                continue;
            }
            queue.pop();
            match action {
                Action::Probe(pair) => {
                    queue.push(Reverse((t + interval, Action::Probe(pair))));
                    self.probe(pair)?;
                }
                Action::Inject(i) => {
                    if let Some(next) = self.inject(i)? {
                        queue.push(Reverse((t + next, Action::Flap(i))));
                    }
                }
                Action::Heal(i) => self.heal(i)?,
                Action::Flap(i) => {
                    if let Some(next) = self.flap(i)? {
                        queue.push(Reverse((t + next, Action::Flap(i))));
                    }
                }
            }
        }
        while self.now() < end && !self.interrupted.load(Ordering::Relaxed) {
            self.drain_events();
            std::thread::sleep(Duration::from_millis(5));
        }
        if self.scenario.faults.iter().any(|f| f.kind.is_byzantine()) {
            self.quarantine_note();
        }
        self.mesh.stop();
        self.drain_events();
        Ok(self.finish(end))
    }

    /// Says how much the nodes' quarantine dropped, in the kernel (XDP blocklist) and in
    /// the nodes (frames read only as far as their address): an isolated flooder should
    /// cost the kernel, not the protocol loop.
    fn quarantine_note(&self) {
        let (mut kernel, mut node) = (0u64, 0u64);
        for n in (0..self.topo.node_count()).filter(|&n| self.status[n as usize] == Status::Running) {
            let Ok(text) = self.mesh.request(n, "GET", "/metrics") else { continue };
            let value = |name: &str| {
                text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<f64>().ok()).unwrap_or(0.0) as u64
            };
            kernel += value("x0_xdp_blocked_total");
            node += value("x0_blocked_rx_total");
        }
        eprintln!(
            "note: quarantine of isolated addresses dropped {kernel} packets in the kernel (XDP blocklist) and {node} \
             frames in the nodes (before or without XDP)"
        );
    }

    fn probe(&mut self, pair: u32) -> anyhow::Result<()> {
        let (src, dst) = self.rec.pairs()[pair as usize];
        let running = self.status[src.index()] == Status::Running;
        let path = self.gt.path_exists(src, dst) && running;
        let id = self.rec.probe_sent(Instant::from_nanos(self.now()), pair, path);
        if running {
            match self.mesh.post(src.0, &format!("/probe?dst={}&id={id}", dst.0)) {
                Ok(reply) if reply.starts_with("HTTP/1.1 200") => {}
                Ok(_) => self.rec.probe_outcome(id, false),
                // A node just restarted may not listen yet: the probe was never sent, and
                // without an outcome it is not judged.
                Err(_) => self.unsent_probes += 1,
            }
        }
        Ok(())
    }

    /// Applies fault instance `i`; for a link flap, returns when its links next come up.
    fn inject(&mut self, i: u32) -> anyhow::Result<Option<u64>> {
        let (spec, k) = (self.instances[i as usize].spec, self.instances[i as usize].k);
        let fault = &self.scenario.faults[spec as usize];
        let mut rng = seed::stream(self.scenario.seed, "fault", u64::from(spec), u64::from(k));
        let now = Instant::from_nanos(self.now());
        let (mut nodes, mut links, mut flap) = (Vec::new(), Vec::new(), None);
        match &fault.kind {
            FaultKind::Restart { target: t, state: StateMode::Keep } => {
                // A restart that keeps state: the process neither hears nor speaks while it
                // is away (XDP drops what arrives, SIGSTOP silences it) and resumes with its
                // tables, as the simulator's does.
                nodes = faults::pick_nodes(t, self.topo, &self.gt, &mut rng);
                for &n in &nodes {
                    if self.status[n.index()] != Status::Running {
                        continue;
                    }
                    self.deafen(n, true)?;
                    self.mesh.signal(n.0, libc::SIGSTOP);
                    self.status[n.index()] = Status::Stopped;
                    self.gt.set_node(n, true, now);
                }
            }
            FaultKind::Crash(t) | FaultKind::Restart { target: t, .. } | FaultKind::Pause(t) => {
                nodes = faults::pick_nodes(t, self.topo, &self.gt, &mut rng);
                let pause = matches!(fault.kind, FaultKind::Pause(_));
                for &n in &nodes {
                    self.mesh.signal(n.0, if pause { libc::SIGSTOP } else { libc::SIGKILL });
                    self.status[n.index()] = if pause { Status::Paused } else { Status::Stopped };
                    self.gt.set_node(n, true, now);
                }
            }
            FaultKind::LinkDown(t) | FaultKind::LinkFlap { target: t, .. } => {
                links = faults::pick_links(t, self.topo, &self.gt, &mut rng);
                for &e in &links {
                    self.mesh.set_link(e as usize, false)?;
                    self.gt.set_link(e, true, now);
                }
                if let FaultKind::LinkFlap { period, .. } = fault.kind {
                    self.instances[i as usize].flap_down = true;
                    flap = Some(duration_nanos(period) / 2);
                }
            }
            FaultKind::Partition(p) => {
                let groups = faults::partition_groups(p, self.topo, &mut rng);
                links = faults::cut_edges(&groups, self.topo);
                for &e in &links {
                    self.set_loss(e, i, Some(1.0))?;
                    self.gt.set_link(e, true, now);
                }
            }
            FaultKind::Clock { target, skew_ns, drift_ppm } => {
                nodes = faults::pick_nodes(target, self.topo, &self.gt, &mut rng);
                for &n in &nodes {
                    self.set_clock(n, *skew_ns, i64::from(*drift_ppm))?;
                    self.gt.touch_node(n, now);
                }
            }
            // Loss only (check_supported refused the rest); the link stays up, as in the
            // simulator.
            FaultKind::Degrade(d) => {
                links = faults::pick_links(&d.target, self.topo, &self.gt, &mut rng);
                for &e in &links {
                    self.set_loss(e, i, Some(d.loss.map_or(0.0, |l| f64::from(l.ppm()) / 1e6)))?;
                }
            }
            FaultKind::Blackhole(t) | FaultKind::GreyHole { target: t, .. } => {
                nodes = faults::pick_nodes(t, self.topo, &self.gt, &mut rng);
                let kind = match fault.kind {
                    FaultKind::GreyHole { drop, .. } => format!("grey_hole&drop={}", drop.ratio()),
                    _ => "blackhole".into(),
                };
                for &n in &nodes {
                    self.chaos(n, &format!("/chaos/behaviour?kind={kind}"))?;
                }
            }
            FaultKind::Replay { target, delay } => {
                links = faults::pick_links(target, self.topo, &self.gt, &mut rng);
                for &e in &links {
                    self.mesh.start_replay(e as usize, *delay)?;
                }
            }
            FaultKind::MalformedFlood { target, rate_per_s } => {
                nodes = faults::pick_nodes(target, self.topo, &self.gt, &mut rng);
                for &n in &nodes {
                    self.chaos(n, &format!("/chaos/flood?rate_per_s={rate_per_s}"))?;
                }
            }
            FaultKind::Impersonate { target, victim } => {
                nodes = faults::pick_nodes(target, self.topo, &self.gt, &mut rng);
                nodes.retain(|n| n.0 != victim.value);
                for &n in &nodes {
                    if self.status[n.index()] != Status::Running {
                        continue;
                    }
                    // Its honest self is gone: to the ground truth it is down.
                    self.mesh.signal(n.0, libc::SIGKILL);
                    self.gt.set_node(n, true, now);
                    self.mesh.start_impostor(n.0, victim.value)?;
                }
            }
        }
        let heal = self.instances[i as usize].heal_ns.map(Instant::from_nanos);
        let ends = links.iter().map(|&e| {
            let [a, b] = &self.mesh.links()[e as usize];
            (NodeId(a.node), NodeId(b.node))
        });
        self.rec.fault(FaultRecord::new(spec, k, fault, now, heal, nodes.clone(), ends.collect::<Vec<_>>()));
        let inst = &mut self.instances[i as usize];
        (inst.nodes, inst.links) = (nodes, links);
        Ok(flap)
    }

    /// Turns a flapping fault's links over for the next half period; returns when to turn
    /// them again, or `None` once the fault has healed (heal brings them up).
    fn flap(&mut self, i: u32) -> anyhow::Result<Option<u64>> {
        let inst = &self.instances[i as usize];
        let FaultKind::LinkFlap { period, .. } = self.scenario.faults[inst.spec as usize].kind else { return Ok(None) };
        let now = self.now();
        if inst.heal_ns.is_some_and(|h| now >= h) {
            return Ok(None);
        }
        let down = !inst.flap_down;
        for &e in &inst.links.clone() {
            self.mesh.set_link(e as usize, !down)?;
            self.gt.set_link(e, down, Instant::from_nanos(now));
        }
        self.instances[i as usize].flap_down = down;
        Ok(Some(duration_nanos(period) / 2))
    }

    fn heal(&mut self, i: u32) -> anyhow::Result<()> {
        let inst = &self.instances[i as usize];
        let fault = &self.scenario.faults[inst.spec as usize];
        let now = Instant::from_nanos(self.now());
        let (nodes, links) = (inst.nodes.clone(), inst.links.clone());
        for &n in &nodes {
            if let FaultKind::Clock { drift_ppm, .. } = fault.kind {
                // Healing stops the drift; the step stays (see FaultKind::Clock).
                self.set_clock(n, 0, -i64::from(drift_ppm))?;
                self.gt.touch_node(n, now);
                continue;
            }
            match fault.kind {
                FaultKind::Blackhole(_) | FaultKind::GreyHole { .. } => {
                    self.chaos(n, "/chaos/behaviour?kind=honest")?;
                    continue;
                }
                FaultKind::MalformedFlood { .. } => {
                    self.chaos(n, "/chaos/flood?rate_per_s=0")?;
                    continue;
                }
                // The impostor goes; the node starts again as itself, below.
                FaultKind::Impersonate { .. } if self.status[n.index()] == Status::Running => self.mesh.signal(n.0, libc::SIGKILL),
                _ => {}
            }
            if self.mesh.is_linked(n.0) {
                match fault.kind {
                    FaultKind::Pause(_) => self.mesh.signal(n.0, libc::SIGCONT),
                    FaultKind::Restart { state: StateMode::Keep, .. } => {
                        if self.status[n.index()] == Status::Running {
                            continue;
                        }
                        self.mesh.signal(n.0, libc::SIGCONT);
                        self.deafen(n, false)?;
                        let reply = self.mesh.post(n.0, "/resume")?;
                        if !reply.starts_with("HTTP/1.1 200") {
                            bail!("node {}: /resume failed ({})", n.0, reply.lines().last().unwrap_or(""));
                        }
                    }
                    _ => self.mesh.start(n.0)?,
                }
                self.status[n.index()] = Status::Running;
            }
            self.gt.set_node(n, false, now);
        }
        if let FaultKind::Replay { .. } = fault.kind {
            for &e in &links {
                let (captured, replayed) = self.mesh.stop_replay(e as usize)?;
                eprintln!("note: the replay attacker on link {e} captured {captured} frames and sent {replayed} again");
            }
            return Ok(());
        }
        // A flap that healed in its up half has nothing to restore.
        let flap_up = matches!(fault.kind, FaultKind::LinkFlap { .. }) && !self.instances[i as usize].flap_down;
        for &e in &links {
            match fault.kind {
                FaultKind::Partition(_) | FaultKind::Degrade(_) => self.set_loss(e, i, None)?,
                _ if flap_up => {}
                _ => self.mesh.set_link(e as usize, true)?,
            }
            if !flap_up && !matches!(fault.kind, FaultKind::Degrade(_)) {
                self.gt.set_link(e, false, now);
            }
        }
        self.instances[i as usize].flap_down = false;
        Ok(())
    }

    /// A Byzantine fault injection request to node `n` (`/chaos/…`); a node that is down
    /// has no behaviour to change.
    fn chaos(&self, n: NodeId, path: &str) -> anyhow::Result<()> {
        if self.status[n.index()] != Status::Running {
            return Ok(());
        }
        let reply = self.mesh.post(n.0, path)?;
        if !reply.starts_with("HTTP/1.1 200") {
            bail!("node {}: POST {path} was refused ({})", n.0, reply.lines().last().unwrap_or(""));
        }
        Ok(())
    }

    /// Steps node `n`'s protocol clock and changes its drift; a node that is down has no
    /// clock to change.
    fn set_clock(&self, n: NodeId, skew_ns: i64, drift_ppm: i64) -> anyhow::Result<()> {
        if self.status[n.index()] != Status::Running {
            return Ok(());
        }
        let reply = self.mesh.post(n.0, &format!("/clock?skew_ns={skew_ns}&drift_ppm={drift_ppm}"))?;
        if !reply.starts_with("HTTP/1.1 200") {
            bail!("node {}: the clock fault was refused ({})", n.0, reply.lines().last().unwrap_or(""));
        }
        Ok(())
    }

    /// Sets (`Some`) or removes (`None`) fault instance `i`'s loss on link `e`, and applies
    /// what all instances on the link add up to, as independent losses.
    fn set_loss(&mut self, e: u32, i: u32, p: Option<f64>) -> anyhow::Result<()> {
        let on_link = &mut self.losses[e as usize];
        on_link.retain(|&(j, _)| j != i);
        on_link.extend(p.map(|p| (i, p)));
        self.cut(e, self.combined_loss(e as usize))
    }

    /// What the faults on link `e` drop together, as independent losses.
    fn combined_loss(&self, e: usize) -> f64 {
        1.0 - self.losses[e].iter().map(|&(_, p)| 1.0 - p).product::<f64>()
    }

    /// Drops a share `p` of link `e`'s protocol packets in both kernels (1 is a partition,
    /// 0 restores it), by the peer's address.
    fn cut(&self, e: u32, p: f64) -> anyhow::Result<()> {
        let [a, b] = self.mesh.links()[e as usize].clone();
        for (me, peer) in [(&a, &b), (&b, &a)] {
            self.xdp_loss(me.node, Some(peer), p)?;
        }
        Ok(())
    }

    /// Sets node `n`'s XDP drop share for packets from `peer`'s end, or (`None`) from every
    /// peer without its own share.
    fn xdp_loss(&self, n: u32, peer: Option<&x0_live::mesh::End>, p: f64) -> anyhow::Result<()> {
        let path = match peer {
            Some(peer) => format!("/xdp/loss?peer={}&p={p}", self.mesh.address(peer)?),
            None => format!("/xdp/loss?p={p}"),
        };
        let reply = self.mesh.post(n, &path)?;
        if !reply.starts_with("HTTP/1.1 200") {
            bail!(
                "node {n}: XDP refused the loss ({}); x0 live needs XDP for partitions, degraded links and \
                 restarts that keep state",
                reply.lines().last().unwrap_or("")
            );
        }
        Ok(())
    }

    /// Makes node `n`'s kernel drop (`true`) or pass again (`false`) every protocol packet
    /// arriving for it, per-peer shares included: those come back as the faults on each
    /// link add up.
    fn deafen(&self, n: NodeId, deaf: bool) -> anyhow::Result<()> {
        self.xdp_loss(n.0, None, if deaf { 1.0 } else { 0.0 })?;
        for (e, ends) in self.mesh.links().iter().enumerate() {
            let Some(k) = ends.iter().position(|end| end.node == n.0) else { continue };
            if !self.losses[e].is_empty() {
                self.xdp_loss(n.0, Some(&ends[1 - k]), if deaf { 1.0 } else { self.combined_loss(e) })?;
            }
        }
        Ok(())
    }

    /// Takes in what the nodes' streams delivered; judges probes and false positives now,
    /// while the ground truth is the one the event happened under.
    fn drain_events(&mut self) {
        while let Ok((node, item)) = self.rx.try_recv() {
            let record = match item {
                StreamItem::Event(r) => r,
                StreamItem::Lagged(k) => {
                    self.lagged += k;
                    continue;
                }
                StreamItem::Bad(why) => {
                    eprintln!("warning: node {node}: {why}");
                    continue;
                }
            };
            let Ok(mut e) = TimedEvent::try_from(&record) else {
                eprintln!("warning: node {node}: an event record that is not an event: {record:?}");
                continue;
            };
            e.t = Instant::from_nanos(record.t_ns.saturating_sub(self.t0_unix));
            // The stream a record came on says which node sent it: an impostor reports
            // under the id it claims.
            e.node = NodeId(node);
            match e.event {
                Event::Probe { id, outcome, .. } => self.rec.probe_outcome(id, matches!(outcome, ProbeOutcome::Delivered { .. })),
                Event::Neighbour { peer, state: NeighbourState::Down, .. } => {
                    if self.gt.is_false_positive(e.node, peer, e.t, self.scenario.checks.false_positive_grace) {
                        self.rec.false_positive(e.t);
                    }
                    self.events.push(e);
                }
                _ => self.events.push(e),
            }
        }
    }

    fn finish(mut self, end: u64) -> RunResult {
        if self.unsent_probes > 0 {
            eprintln!("note: {} probes could not be handed to their source (restarting); they are not judged", self.unsent_probes);
        }
        if self.lagged > 0 {
            eprintln!("warning: the harness fell behind and {} events were lost from the nodes' streams", self.lagged);
        }
        // Streams interleave by arrival; the definitions take events in time order.
        self.events.sort_by_key(|e| e.t);
        let mut fingerprint = Fingerprint::default();
        for e in std::mem::take(&mut self.events) {
            fingerprint.event(e.t, e.node, &e.event);
            self.rec.event(e);
        }
        let s = self.scenario;
        let checks = &s.checks;
        let eval = self.rec.finish(&s.steady_state, checks.recovery_window, checks.false_positive_grace, s.protocol.probe_timeout, Instant::from_nanos(end));
        RunResult {
            seed: s.seed,
            fingerprint: fingerprint.digest(),
            trace_records: fingerprint.records(),
            nodes: self.topo.node_count(),
            links: self.topo.edge_count(),
            faults: eval.faults,
            counters: RunCounters {
                nodes: u64::from(self.topo.node_count()),
                loops: 0,
                false_positives: eval.false_positives,
                honest_isolated: eval.honest_isolated,
                probes: u64::from(eval.probes_total),
                probes_ok: u64::from(eval.probes_ok),
                control_bytes: 0,
                measured_seconds: (end - duration_nanos(s.warmup)) as f64 / 1e9,
                stretch: Vec::new(),
            },
            baseline_success: eval.baseline_success,
            loop_examples: Vec::new(),
            engine: EngineStats::default(),
            sim_seconds: end as f64 / 1e9,
            route_entries: 0,
            state_bytes: StateBytes::default(),
            live_nodes: self.topo.node_count(),
            partitions: 1,
            trace: Trace { events: eval.events, probes: eval.probes, pairs: eval.pairs },
        }
    }
}
