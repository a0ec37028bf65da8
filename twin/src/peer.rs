//! `x0 bench peer`: x0-node against babeld on the same namespace topology, with the same
//! probes and the same crash (root). Two procedures per daemon, on one start:
//!
//! - Cold start (after meshnet-lab's convergence test): every daemon starts at once, then
//!   rounds of `--pairs` probes between fresh random pairs go out, each round spread over
//!   2 s, for `--converge-secs`. The result is the delivery ratio against time since start.
//! - Crash reroute: after a quiet window (no probes; the daemons' CPU is measured there),
//!   fixed random pairs are probed every `--probe-interval-ms`, and the most central node
//!   crashes. Per disrupted pair, the reroute time is the core's definition
//!   ([`x0tta6bl4::metrics::pair_recoveries`]); MTTR is the largest. The host stays up, so
//!   x0-node hears of the dead daemon from its kernel (port unreachable); with `--dark` the
//!   whole host goes dark first, as at a power loss, and only silence tells.
//!
//! babeld routes kernel traffic, so its probes are UDP echoes between loopback addresses;
//! x0-node's are its own end-to-end probes. Both count a probe delivered when the answer is
//! back at the source within one second.

use crate::out::outln;
use anyhow::{Context, bail};
use rand::RngExt;
use serde::Serialize;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant as WallInstant};
use x0_live::babel::BabelMesh;
use x0_live::lab::is_root;
use x0_live::mesh::{Mesh, NodeSetup, StreamItem};
use x0tta6bl4::config::ProtocolConfig;
use x0tta6bl4::ids::NodeId;
use x0tta6bl4::metrics::{FaultRecord, GroundTruth, ProbeIndex, Recorder, pair_recoveries};
use x0tta6bl4::node::{Event, ProbeOutcome};
use x0tta6bl4::scenario::SteadyState;
use x0tta6bl4::time::{Instant, duration_nanos};

/// A probe with no answer after this long is lost (x0-node's default `probe_timeout`).
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// meshnet-lab spreads each round of pings over 2 s.
const ROUND: Duration = Duration::from_secs(2);
/// Convergence-probe ids start here, apart from the reroute probes' (the Recorder's).
const CONVERGE_ID_BASE: u64 = 1 << 40;

#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Daemon {
    /// x0-node with the default protocol settings (100 ms hellos).
    X0,
    /// The same without XDP (userspace-only mode), to show what loading XDP costs.
    X0Userspace,
    /// babeld with 100 ms hellos: `-h 0.1 -H 0.1`.
    BabeldFast,
    /// babeld at its defaults (4 s hellos).
    Babeld,
}

impl Daemon {
    fn label(self) -> &'static str {
        match self {
            Daemon::X0 => "x0-node",
            Daemon::X0Userspace => "x0-node (no XDP)",
            Daemon::BabeldFast => "babeld -h 0.1 -H 0.1",
            Daemon::Babeld => "babeld (defaults)",
        }
    }
}

#[derive(clap::Args)]
pub struct PeerArgs {
    /// The topology, as for `x0 topo`: `grid:7x7`, a meshnet-lab JSON file, ...
    #[arg(long, default_value = "grid:7x7")]
    pub topology: String,
    /// Which daemons to run, one after the other.
    #[arg(long, value_delimiter = ',', default_value = "x0,babeld-fast,babeld")]
    pub daemons: Vec<Daemon>,
    /// Cold-start probing after every daemon starts.
    #[arg(long, default_value_t = 20)]
    pub converge_secs: u64,
    /// Then no probes, while the daemons' CPU use is measured.
    #[arg(long, default_value_t = 5)]
    pub quiet_secs: u64,
    /// Then probing of fixed pairs before the crash.
    #[arg(long, default_value_t = 3)]
    pub steady_secs: u64,
    /// Probing after the crash (babeld at its defaults needs about 30 s).
    #[arg(long, default_value_t = 30)]
    pub after_secs: u64,
    /// Probe pairs, per cold-start round and for the reroute.
    #[arg(long, default_value_t = 200)]
    pub pairs: u32,
    #[arg(long, default_value_t = 100)]
    pub probe_interval_ms: u64,
    /// Width of the cold-start curve's time bins.
    #[arg(long, default_value_t = 250)]
    pub bin_ms: u64,
    /// Node to crash (default: the most central, by total hop distance to all others).
    #[arg(long)]
    pub crash: Option<u32>,
    /// The crashed node's whole host goes dark first, as at a power loss: its kernel drops
    /// everything in, out and through (nftables), so no port unreachable answers for the
    /// dead daemon and only silence tells. Without it the host stays up.
    #[arg(long)]
    pub dark: bool,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The x0-node binary (default: next to this x0, then PATH).
    #[arg(long)]
    pub node_binary: Option<PathBuf>,
    /// The babeld binary.
    #[arg(long, default_value = "babeld")]
    pub babeld: PathBuf,
    /// Directory for curves (CSV), the summary (JSON) and daemon files.
    #[arg(long, default_value = "results/peer")]
    pub out: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What one daemon did. Field names are a stable interface (`--json`, summary.json).
#[derive(Serialize)]
pub struct DaemonReport {
    pub daemon: Daemon,
    pub label: &'static str,
    pub nodes: u32,
    pub links: usize,
    /// Cold start: delivered share per bin of send time, seconds since start.
    pub curve: Vec<Bin>,
    /// Send time of the last lost cold-start probe, if any was lost.
    pub last_loss_secs: Option<f64>,
    /// How long starting every daemon took (the last started this long after the first).
    pub start_spread_secs: f64,
    pub converge_probes: u32,
    pub converge_delivered: u32,
    pub crashed_node: u32,
    /// Whether the crashed node's host went dark (`--dark`) rather than staying up.
    pub dark_host: bool,
    pub disrupted_pairs: u32,
    pub unrecovered_pairs: u32,
    pub reroute_p50_ms: Option<f64>,
    pub reroute_max_ms: Option<f64>,
    pub mttr_ms: Option<f64>,
    /// CPU of all daemons together during the quiet window, in cores.
    pub idle_cores: f64,
    /// Every reroute probe: pair, source, destination, send time (s), judged, delivered.
    #[serde(skip)]
    pub probes: Vec<(u32, u32, u32, f64, bool, bool)>,
    /// CPU of all daemons over the whole run (crashed one included), in seconds.
    pub cpu_secs: f64,
    pub wall_secs: f64,
}

#[derive(Serialize, Clone, Copy)]
pub struct Bin {
    pub t_secs: f64,
    pub sent: u32,
    pub delivered: u32,
}

/// The daemons of one run, driven the same way whichever they are.
enum Under {
    X0 { mesh: Mesh, rx: mpsc::Receiver<(u32, StreamItem)> },
    Babel { mesh: BabelMesh, rx: mpsc::Receiver<(u64, WallInstant)> },
}

impl Under {
    fn start(&mut self, n: u32) -> anyhow::Result<()> {
        match self {
            Under::X0 { mesh, .. } => mesh.start(n)?,
            Under::Babel { mesh, .. } => mesh.start(n)?,
        }
        Ok(())
    }

    /// Sends a probe; `false` if it was refused at once (no route: lost).
    fn probe(&self, src: u32, dst: u32, id: u64) -> bool {
        match self {
            Under::X0 { mesh, .. } => {
                mesh.post(src, &format!("/probe?dst={dst}&id={id}")).is_ok_and(|r| r.starts_with("HTTP/1.1 200"))
            }
            Under::Babel { mesh, .. } => mesh.probe(src, dst, id),
        }
    }

    /// Probe answers so far: (id, delivered, when known).
    fn answers(&mut self, out: &mut Vec<(u64, bool, WallInstant)>) {
        match self {
            Under::X0 { rx, .. } => {
                while let Ok((_, item)) = rx.try_recv() {
                    let StreamItem::Event(r) = item else { continue };
                    if let Ok(e) = x0tta6bl4::metrics::TimedEvent::try_from(&r)
                        && let Event::Probe { id, outcome, .. } = e.event
                    {
                        out.push((id, matches!(outcome, ProbeOutcome::Delivered { .. }), WallInstant::now()));
                    }
                }
            }
            Under::Babel { rx, .. } => out.extend(rx.try_iter().map(|(id, at)| (id, true, at))),
        }
    }

    fn crash(&mut self, n: u32, dark: bool) -> anyhow::Result<()> {
        if dark {
            match self {
                Under::X0 { mesh, .. } => mesh.go_dark(n)?,
                Under::Babel { mesh, .. } => mesh.go_dark(n)?,
            }
        }
        match self {
            Under::X0 { mesh, .. } => mesh.signal(n, libc::SIGKILL),
            Under::Babel { mesh, .. } => mesh.crash(n)?,
        }
        Ok(())
    }

    fn cpu_time(&self, n: u32) -> Option<Duration> {
        match self {
            Under::X0 { mesh, .. } => mesh.cpu_time(n),
            Under::Babel { mesh, .. } => mesh.cpu_time(n),
        }
    }

    fn stop(&mut self) {
        match self {
            Under::X0 { mesh, .. } => mesh.stop(),
            Under::Babel { mesh, .. } => mesh.stop(),
        }
    }
}

/// A probe the harness sent, and its outcome once known.
#[derive(Copy, Clone)]
struct Sent {
    at: WallInstant,
    outcome: Option<bool>,
}

impl Sent {
    fn now() -> Sent {
        Sent { at: WallInstant::now(), outcome: None }
    }
}

/// Sends probes, collects answers and times out the rest.
#[derive(Default)]
struct Prober {
    /// Reroute probes by id (the Recorder's); cold-start probes by id less
    /// CONVERGE_ID_BASE, with their send time in seconds since the first start.
    reroute: Vec<Sent>,
    converge: Vec<(f64, Sent)>,
    /// Ids still waiting for an answer, oldest first.
    pending: VecDeque<u64>,
    answers: Vec<(u64, bool, WallInstant)>,
}

impl Prober {
    fn slot(&mut self, id: u64) -> Option<&mut Sent> {
        match id.checked_sub(CONVERGE_ID_BASE) {
            Some(i) => Some(&mut self.converge.get_mut(usize::try_from(i).ok()?)?.1),
            None => self.reroute.get_mut(usize::try_from(id).ok()?),
        }
    }

    /// Hands probe `id` (its slot already pushed) to the daemons; one refused at once is lost.
    fn send(&mut self, under: &Under, src: NodeId, dst: NodeId, id: u64) {
        if !under.probe(src.0, dst.0, id)
            && let Some(slot) = self.slot(id)
        {
            slot.outcome = Some(false);
        }
        self.pending.push_back(id);
    }

    fn settle(&mut self, under: &mut Under) {
        let mut answers = std::mem::take(&mut self.answers);
        under.answers(&mut answers);
        for (id, ok, at) in answers.drain(..) {
            if let Some(slot) = self.slot(id)
                && slot.outcome.is_none()
            {
                slot.outcome = Some(ok && at.duration_since(slot.at) <= PROBE_TIMEOUT);
            }
        }
        self.answers = answers;
        let now = WallInstant::now();
        while let Some(&id) = self.pending.front() {
            if let Some(slot) = self.slot(id) {
                // A little slack over the timeout: x0-node reports its own losses at 1 s.
                if now.duration_since(slot.at) < PROBE_TIMEOUT + Duration::from_millis(300) {
                    break;
                }
                slot.outcome.get_or_insert(false);
            }
            self.pending.pop_front();
        }
    }
}

pub fn peer(args: &PeerArgs) -> anyhow::Result<()> {
    if !is_root() {
        bail!("x0 bench peer builds network namespaces, which needs root; run it as root");
    }
    anyhow::ensure!(args.pairs >= 1 && args.probe_interval_ms >= 1 && args.bin_ms >= 1, "--pairs, --probe-interval-ms and --bin-ms must be at least 1");
    let topo = crate::topo::build(&args.topology, args.seed)?;
    let n = topo.node_count();
    anyhow::ensure!(n >= 3, "the topology has {n} nodes; a reroute needs at least 3");
    let crash = match args.crash {
        Some(c) if c < n => c,
        Some(c) => bail!("--crash {c}: the topology has nodes 0 to {}", n - 1),
        None => most_central(&topo),
    };
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let mut reports = Vec::new();
    for &d in &args.daemons {
        let what = if args.dark { "dark host at node" } else { "crash of node" };
        eprintln!("{}: {} nodes, {} links, {what} {crash} ...", d.label(), n, topo.edge_count());
        reports.push(run_one(args, d, &topo, crash)?);
    }
    write_files(&args.out, &reports)?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        print_table(&reports);
        outln!("written to {}: convergence.csv and .png, reroute.csv, summary.json", args.out.display());
    }
    Ok(())
}

/// The node with the smallest total hop distance to all others (the centre of a grid).
fn most_central(topo: &x0_sim::Topology) -> u32 {
    let gt = GroundTruth::new(topo.node_count(), &topo.edge_list());
    let n = topo.node_count();
    let total = |s: u32| -> u64 {
        let mut dist = vec![u32::MAX; n as usize];
        let mut queue = VecDeque::from([s]);
        dist[s as usize] = 0;
        while let Some(u) = queue.pop_front() {
            for &(v, _) in gt.neighbours(NodeId(u)) {
                if dist[v.index()] == u32::MAX {
                    dist[v.index()] = dist[u as usize] + 1;
                    queue.push_back(v.0);
                }
            }
        }
        dist.iter().map(|&d| if d == u32::MAX { u64::from(n) } else { u64::from(d) }).sum()
    };
    (0..n).min_by_key(|&s| (total(s), s)).expect("at least one node")
}

fn run_one(args: &PeerArgs, daemon: Daemon, topo: &x0_sim::Topology, crash: u32) -> anyhow::Result<DaemonReport> {
    let n = topo.node_count();
    let edges = topo.edge_list();
    let pairs_list: Vec<(u32, u32)> = edges.iter().map(|&(a, b)| (a.0, b.0)).collect();
    let dir = args.out.join(match daemon {
        Daemon::X0 => "x0",
        Daemon::X0Userspace => "x0-userspace",
        Daemon::BabeldFast => "babeld-fast",
        Daemon::Babeld => "babeld",
    });
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut under = match daemon {
        Daemon::X0 | Daemon::X0Userspace => {
            let binary = crate::live::node_binary(args.node_binary.as_deref())?;
            let (tx, rx) = mpsc::channel();
            let xdp = daemon == Daemon::X0;
            Under::X0 { mesh: Mesh::build(&binary, &dir, n, &pairs_list, &NodeSetup { protocol: &ProtocolConfig::default(), security: None, xdp }, tx)?, rx }
        }
        Daemon::BabeldFast | Daemon::Babeld => {
            let found = std::process::Command::new(&args.babeld).arg("-V").output();
            if found.is_err() {
                bail!("{} not found; install it with `apt-get install babeld` or give --babeld PATH", args.babeld.display());
            }
            let flags: Vec<String> =
                if daemon == Daemon::BabeldFast { ["-h", "0.1", "-H", "0.1"].map(String::from).to_vec() } else { Vec::new() };
            let (tx, rx) = mpsc::channel();
            Under::Babel { mesh: BabelMesh::build(&args.babeld, &flags, &dir, n, &pairs_list, tx)?, rx }
        }
    };
    // A node without links (some topology files list one) has nothing to run on.
    let linked: Vec<u32> = (0..n).filter(|&i| edges.iter().any(|&(a, b)| a.0 == i || b.0 == i)).collect();
    let mut gt = GroundTruth::new(n, &edges);
    for i in (0..n).filter(|i| !linked.contains(i)) {
        gt.set_node(NodeId(i), true, Instant::ZERO);
    }

    let secs = Duration::from_secs;
    let converge_end = secs(args.converge_secs);
    let quiet_end = converge_end + secs(args.quiet_secs);
    let crash_at = quiet_end + secs(args.steady_secs);
    let end = crash_at + secs(args.after_secs);
    let interval = Duration::from_millis(args.probe_interval_ms);

    let mut rng = x0_sim::seed::stream(args.seed, "peer-bench", 0, 0);
    let pick = |rng: &mut dyn FnMut(usize) -> usize| loop {
        let (a, b) = (linked[rng(linked.len())], linked[rng(linked.len())]);
        if a != b {
            break (NodeId(a), NodeId(b));
        }
    };
    let mut rng = move |len: usize| rng.random_range(0..len);
    let reroute_pairs: Vec<(NodeId, NodeId)> = (0..args.pairs).map(|_| pick(&mut rng)).collect();
    let mut rec = Recorder::new(Instant::from_nanos(duration_nanos(quiet_end)), reroute_pairs.clone());
    let mut prober = Prober::default();

    // Time runs from the first start; starting every daemon takes a while, and the curve
    // shows it as it would a real mesh's staggered start.
    let t0 = WallInstant::now();
    for &i in &linked {
        under.start(i)?;
    }
    let started_secs = t0.elapsed().as_secs_f64();
    // The schedule: cold-start probes at fixed offsets, then reroute probes per pair.
    let per_round = ROUND / args.pairs;
    let mut next_converge = Duration::ZERO;
    let mut next_pair: Vec<Duration> = (0..args.pairs).map(|k| quiet_end + interval * k / args.pairs).collect();
    let mut crashed = false;
    let (mut cpu_quiet_start, mut cpu_quiet_end, mut cpu_crashed) = (None, None, Duration::ZERO);
    let cpu_all = |under: &Under| linked.iter().filter_map(|&i| under.cpu_time(i)).sum::<Duration>();
    loop {
        let now = t0.elapsed();
        if now >= end {
            break;
        }
        if now >= converge_end && cpu_quiet_start.is_none() {
            // babeld exits at once on a bad option or file; a mesh missing a node is no
            // benchmark.
            if let Under::Babel { mesh, .. } = &mut under
                && let Some((node, log)) = mesh.dead().first()
            {
                bail!("babeld on node {node} exited; its log is {}", log.display());
            }
            cpu_quiet_start = Some((now, cpu_all(&under)));
        }
        if now >= quiet_end && cpu_quiet_end.is_none() {
            cpu_quiet_end = Some((now, cpu_all(&under)));
        }
        if now >= crash_at && !crashed {
            cpu_crashed = under.cpu_time(crash).unwrap_or_default();
            under.crash(crash, args.dark)?;
            let t = Instant::from_nanos(duration_nanos(t0.elapsed()));
            gt.set_node(NodeId(crash), true, t);
            rec.fault(FaultRecord {
                spec: 0,
                instance: 0,
                name: format!("{} node {crash}", if args.dark { "dark host" } else { "crash" }),
                kind: "crash",
                node_fault: true,
                failure: true,
                byzantine: false,
                t_inject: t,
                t_heal: None,
                nodes: vec![NodeId(crash)],
                links: Vec::new(),
            });
            crashed = true;
        }
        while next_converge < converge_end && next_converge <= now {
            let (a, b) = pick(&mut rng);
            let id = CONVERGE_ID_BASE + prober.converge.len() as u64;
            prober.converge.push((t0.elapsed().as_secs_f64(), Sent::now()));
            prober.send(&under, a, b, id);
            next_converge += per_round;
        }
        for (pair, due) in next_pair.iter_mut().enumerate() {
            if *due > now {
                continue;
            }
            *due += interval;
            let (src, dst) = reroute_pairs[pair];
            let path = gt.path_exists(src, dst);
            let id = rec.probe_sent(Instant::from_nanos(duration_nanos(t0.elapsed())), pair as u32, path);
            prober.reroute.push(Sent::now());
            if gt.node_alive(src) {
                prober.send(&under, src, dst, id);
            }
        }
        prober.settle(&mut under);
        std::thread::sleep(Duration::from_millis(2));
    }
    let cpu_end = cpu_all(&under) + cpu_crashed;
    let wall = t0.elapsed();
    under.stop();
    // Answers still on their way are judged as the rest: late ones are losses.
    std::thread::sleep(PROBE_TIMEOUT);
    prober.settle(&mut under);
    for (id, sent) in prober.reroute.iter().enumerate() {
        if let Some(ok) = sent.outcome {
            rec.probe_outcome(id as u64, ok);
        }
    }
    let horizon = Instant::from_nanos(duration_nanos(end));
    let eval = rec.finish(&SteadyState::default(), secs(args.after_secs), Duration::from_secs(1), PROBE_TIMEOUT, horizon);
    let (fault, outcome) = eval.faults.first().context("the crash was not injected")?;
    let index = ProbeIndex::new(&eval.probes, args.pairs);
    let window_end = (fault.t_inject + secs(args.after_secs)).min(horizon);
    let mut reroutes: Vec<f64> = pair_recoveries(fault, &index, window_end)
        .flatten()
        .map(|t| t.saturating_since(fault.t_inject).as_secs_f64() * 1e3)
        .collect();
    reroutes.sort_by(f64::total_cmp);

    let bin = Duration::from_millis(args.bin_ms).as_secs_f64();
    let bins = (converge_end.as_secs_f64() / bin).ceil() as usize;
    let mut curve: Vec<Bin> = (0..bins).map(|k| Bin { t_secs: k as f64 * bin, sent: 0, delivered: 0 }).collect();
    let mut last_loss: Option<f64> = None;
    for &(t, sent) in &prober.converge {
        let b = &mut curve[((t / bin) as usize).min(bins - 1)];
        b.sent += 1;
        if sent.outcome == Some(true) {
            b.delivered += 1;
        } else {
            last_loss = Some(last_loss.map_or(t, |l| l.max(t)));
        }
    }
    let idle_cores = match (cpu_quiet_start, cpu_quiet_end) {
        (Some((t1, c1)), Some((t2, c2))) if t2 > t1 => c2.saturating_sub(c1).as_secs_f64() / (t2 - t1).as_secs_f64(),
        _ => f64::NAN,
    };
    Ok(DaemonReport {
        daemon,
        label: daemon.label(),
        nodes: linked.len() as u32,
        links: edges.len(),
        start_spread_secs: started_secs,
        converge_probes: prober.converge.len() as u32,
        converge_delivered: prober.converge.iter().filter(|c| c.1.outcome == Some(true)).count() as u32,
        curve,
        last_loss_secs: last_loss,
        crashed_node: crash,
        dark_host: args.dark,
        disrupted_pairs: outcome.disrupted_pairs,
        unrecovered_pairs: outcome.unrecovered_pairs,
        reroute_p50_ms: (!reroutes.is_empty()).then(|| reroutes[(reroutes.len() - 1) / 2]),
        reroute_max_ms: reroutes.last().copied(),
        mttr_ms: outcome.mttr(fault).map(|d| d.as_secs_f64() * 1e3),
        idle_cores,
        probes: eval
            .probes
            .iter()
            .map(|p| {
                let (src, dst) = eval.pairs[p.pair as usize];
                (p.pair, src.0, dst.0, p.sent.as_secs_f64(), p.path, p.ok)
            })
            .collect(),
        cpu_secs: cpu_end.as_secs_f64(),
        wall_secs: wall.as_secs_f64(),
    })
}

fn write_files(dir: &Path, reports: &[DaemonReport]) -> anyhow::Result<()> {
    let mut csv = String::from("daemon,t_secs,sent,delivered,ratio\n");
    for r in reports {
        for b in &r.curve {
            let ratio = if b.sent == 0 { String::new() } else { format!("{:.4}", f64::from(b.delivered) / f64::from(b.sent)) };
            csv.push_str(&format!("{},{:.3},{},{},{ratio}\n", r.label, b.t_secs, b.sent, b.delivered));
        }
    }
    let path = dir.join("convergence.csv");
    std::fs::write(&path, csv).with_context(|| format!("writing {}", path.display()))?;
    let mut csv = String::from("daemon,pair,src,dst,sent_secs,judged,delivered\n");
    for r in reports {
        for &(pair, src, dst, sent, judged, ok) in &r.probes {
            csv.push_str(&format!("{},{pair},{src},{dst},{sent:.3},{judged},{ok}\n", r.label));
        }
    }
    let path = dir.join("reroute.csv");
    std::fs::write(&path, csv).with_context(|| format!("writing {}", path.display()))?;
    let curves: Vec<(&str, Vec<(f64, f64)>)> = reports
        .iter()
        .map(|r| {
            let points = r.curve.iter().filter(|b| b.sent > 0).map(|b| (b.t_secs, f64::from(b.delivered) / f64::from(b.sent)));
            (r.label, points.collect())
        })
        .collect();
    let title = format!("cold start: {} nodes, {} links", reports.first().map_or(0, |r| r.nodes), reports.first().map_or(0, |r| r.links));
    crate::plot::convergence(&dir.join("convergence.png"), &curves, &title)?;
    let path = dir.join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(reports)?).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn print_table(reports: &[DaemonReport]) {
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header([
        "daemon",
        "cold start: delivered",
        "last loss (s)",
        "disrupted pairs",
        "reroute p50 (ms)",
        "reroute max (ms)",
        "unrecovered",
        "idle CPU (cores)",
        "CPU total (s)",
    ]);
    for r in reports {
        t.add_row([
            r.label.to_string(),
            format!("{}/{}", r.converge_delivered, r.converge_probes),
            r.last_loss_secs.map_or("none".into(), |t| format!("{t:.2}")),
            r.disrupted_pairs.to_string(),
            ms(r.reroute_p50_ms),
            ms(r.reroute_max_ms),
            r.unrecovered_pairs.to_string(),
            format!("{:.3}", r.idle_cores),
            format!("{:.2}", r.cpu_secs),
        ]);
    }
    outln!("{t}");
    let secs = |t: Option<f64>| t.map_or("none".to_string(), |t| format!("{t:.2} s"));
    let x0 = reports.iter().find(|r| r.daemon == Daemon::X0);
    for b in reports.iter().filter(|r| matches!(r.daemon, Daemon::Babeld | Daemon::BabeldFast)) {
        let Some(x0) = x0 else { break };
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if a > 0.0 => format!("{:.2}x", b / a),
            _ => "-".into(),
        };
        outln!(
            "{} vs x0-node: reroute p50 {} slower, max {} slower; idle CPU {}; last cold-start loss {} vs {}",
            b.label,
            ratio(x0.reroute_p50_ms, b.reroute_p50_ms),
            ratio(x0.reroute_max_ms, b.reroute_max_ms),
            ratio(Some(x0.idle_cores), Some(b.idle_cores)).replace('x', "x of x0-node's"),
            secs(b.last_loss_secs),
            secs(x0.last_loss_secs),
        );
    }
}
