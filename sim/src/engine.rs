//! The discrete-event simulator: virtual time in integer nanoseconds, and nothing but
//! event times and event keys deciding order. It moves bytes and time in and out of the
//! core's [`Node`]s; it holds no protocol logic.
//!
//! One run can use several cores (conservative parallel simulation). Nodes are split into
//! partitions of consecutive ids, each with its own event queue, frame pool and counters. Time
//! advances in windows no longer than the smallest link latency (the lookahead): a frame
//! sent inside a window cannot arrive before the window ends, so partitions run a window side
//! by side and hand each other their frames at its end. Events that touch the whole world
//! (faults, probes, checkers) run alone between windows, before any node event at the same
//! instant. Nothing in this depends on the number of partitions: events at one instant run in
//! the order of (scheduling node, that node's count), and node events reach the recorder
//! and the fingerprint sorted by (time, node). So one seed gives one fingerprint whether
//! the run uses one core or several.

use crate::checkers;
use crate::faults;
use crate::identity::Identities;
use crate::net::{Direction, Fate, LinkParams};
use crate::queue::{AheadQueue, EventQueue};
use crate::seed;
use crate::topology::Topology;
use petgraph::visit::EdgeRef;
use rand::{Rng, RngExt};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::time::Duration;
use thiserror::Error;
use x0tta6bl4::config::ProtocolConfig;
use x0tta6bl4::ids::{Dest, IfIndex, NodeId, PeerAddr};
use x0tta6bl4::metrics::{FaultOutcome, FaultRecord, GroundTruth, ProbeRecord, Recorder, RunCounters, TimedEvent};
use x0tta6bl4::node::{Behaviour, Command, Event, Lookahead, NeighbourState, Node, OutputBuffers, ProbeOutcome, StateBytes, TrafficClass};
use x0tta6bl4::scenario::{Degrade, FLOOD_FRAME_LEN, FaultKind, LinkTarget, Scenario, ScenarioError, StateMode, error_at};
use x0tta6bl4::time::{Instant, NodeClock, duration_nanos};
use x0tta6bl4::trace::{Digest, Fingerprint};

/// Packets a frozen node's socket buffer holds; more are dropped, as the kernel would.
const PAUSE_BUFFER_PACKETS: usize = 1024;
/// Loops kept as examples for the report (all are counted).
const LOOP_EXAMPLES_MAX: usize = 16;
/// Destinations the loop checker looks up in one visit to each node. Following one
/// destination from node to node is a chain of dependent cache misses; looking up a batch
/// in each node's table makes the misses independent, so they overlap, and the node itself
/// is fetched once per batch. Bounds the checker's hop matrix at nodes × this many entries.
const LOOP_BATCH_MAX: usize = 64;
/// "No next hop" in the checker's hop matrix.
const NO_HOP: u32 = u32::MAX;
/// Bits of an event key that count the events one node scheduled; the node id is above
/// them. 2^40 events per node is far beyond any run, and 2^24 nodes beyond any topology.
const KEY_COUNT_BITS: u32 = 40;
const NODES_MAX: u32 = 1 << (64 - KEY_COUNT_BITS);
/// Events a partition looks at ahead of their turn. At 10,000 nodes an event's
/// records (simulator node, process, frame, tables) are cold: each read is a miss to main
/// memory, and one event after another they form a chain. Knowing the next events, the
/// partition asks for their memory early and the misses overlap with the work in between.
const AHEAD_EVENTS: usize = 16;
/// How many events ahead each step of an event's memory is asked for. Each step reads what
/// the one before brought in, so the steps are a few events apart (an event takes a few
/// times as long as a miss to main memory).
const PREFETCH_STEPS: [(usize, Step); 4] =
    [(12, Step::Records), (8, Step::Contents), (4, Step::Node(Lookahead::Tables)), (1, Step::Node(Lookahead::Entries))];
const _: () = assert!(PREFETCH_STEPS[0].0 < AHEAD_EVENTS, "the first step looks furthest ahead");
/// The same for the loop checker's walk over nodes: the process record, then its forwarding
/// table (the checker needs no neighbour entry).
const CHECK_PREFETCH_STEPS: [(usize, Option<Lookahead>); 2] = [(8, None), (3, Some(Lookahead::Tables))];

/// One step of fetching an event's memory ahead.
#[derive(Copy, Clone, Debug)]
enum Step {
    /// The simulator's records: the node, the frame's buffer record.
    Records,
    /// What they point to: the node's process, the frame's bytes.
    Contents,
    /// The process's tables the frame is looked up in, then the entries found there (see
    /// [`Node::datagram_memory`]).
    Node(Lookahead),
}

#[derive(Debug, Error)]
pub enum SimError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
}

/// What a frame on a link is: which tells a stopped receiver's host how to answer it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Carried {
    Multicast,
    Unicast,
    /// A port-unreachable report quoting a unicast frame that reached a node with no
    /// process, on its way back to the frame's sender (see `core::node::bounce`).
    Bounce,
}

/// An event of one node: it runs in the node's partition, inside a window. A delivery
/// carries its whole leg, sender included, so that the receiver's event reads no link record.
#[derive(Copy, Clone, Debug)]
enum NodeEv {
    Deliver { leg: Leg, pkt: u32 },
    Timer { node: u32, generation: u32 },
}

/// An event that reads or changes more than one node: it runs between windows, alone.
#[derive(Copy, Clone, Debug)]
enum WorldEv {
    Inject { instance: u32 },
    Heal { instance: u32 },
    Flap { instance: u32 },
    Flood { instance: u32 },
    Probe { pair: u32 },
    LoopCheck,
    StretchCheck,
}

/// Frame buffers recycled between transmissions: no allocation per packet once warm.
#[derive(Default)]
struct Pool {
    bufs: Vec<Vec<u8>>,
    free: Vec<u32>,
}

impl Pool {
    fn alloc(&mut self, bytes: &[u8]) -> u32 {
        match self.free.pop() {
            Some(i) => {
                let b = &mut self.bufs[i as usize];
                b.clear();
                b.extend_from_slice(bytes);
                i
            }
            None => {
                self.bufs.push(bytes.to_vec());
                (self.bufs.len() - 1) as u32
            }
        }
    }

    fn release(&mut self, i: u32) {
        self.free.push(i);
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Status {
    Running,
    /// No process (crashed, or between stop and start of a restart).
    Stopped,
    /// Frozen: packets wait in the socket buffer, timers wait.
    Paused,
}

/// One end of a link, as its node sees it, with what a send needs to know of the other
/// end: sending then reads no link record.
struct Iface {
    link: u32,
    /// The node at the other end, and its interface there.
    peer: u32,
    peer_iface: u16,
    /// The direction this end sends into: only the sending node's partition touches it.
    tx: Direction,
}

// A hello round walks all of a node's interfaces: each cache line here is one more miss.
const _: () = assert!(size_of::<Iface>() <= 88, "an interface record grew");

struct SimNode {
    node: Option<Box<Node>>,
    status: Status,
    ifaces: Vec<Iface>,
    timer_generation: u32,
    timer_at: Option<u64>,
    clock: NodeClock,
    boots: u64,
    /// When its last process stopped (global ns); `None` while it has never stopped.
    stopped_at: Option<u64>,
    /// Frames that reached it while paused: (interface, sender, frame in the pool).
    inbox: VecDeque<(u16, u32, u32)>,
    /// Set while an `impersonate` fault has the node pose as this other node.
    posing_as: Option<u32>,
    /// Events this node has scheduled: with its id, the key ordering events at one instant.
    scheduled: u64,
}

impl SimNode {
    /// Its process, when it is running: what forwards traffic now.
    fn process(&self) -> Option<&Node> {
        self.node.as_deref().filter(|_| self.status == Status::Running)
    }
}

struct Link {
    ends: [NodeId; 2],
    ifaces: [IfIndex; 2],
    /// Each direction's behaviour without impairments, by side. Only faults read it: the
    /// sending interface's record, which every frame reads, holds what applies now.
    base: [LinkParams; 2],
    degrades: Vec<(u32, Degrade)>,
    /// Replay attackers on this link: (fault instance, delay in ns).
    replays: Vec<(u32, u64)>,
}

struct Instance {
    spec: u32,
    k: u32,
    t_heal: Option<u64>,
    nodes: Vec<NodeId>,
    links: Vec<u32>,
    flap_down: bool,
    /// Where a malformed flood's bytes come from.
    flood_rng: Option<ChaCha8Rng>,
}

/// A forwarding loop the checker saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoopSample {
    pub at: Instant,
    pub dest: NodeId,
    pub cycle: Vec<NodeId>,
}

/// Engine counters: what happened to packets and how much work the run was.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub events: u64,
    pub frames_sent: u64,
    pub frames_delivered: u64,
    pub frames_lost: u64,
    pub frames_queue_dropped: u64,
    pub frames_link_down: u64,
    pub frames_to_stopped: u64,
    /// Unicast frames to a stopped node that its host answered with a port unreachable.
    pub frames_bounced: u64,
    pub frames_pause_dropped: u64,
    pub frames_misaddressed: u64,
    pub frames_duplicated: u64,
    pub frames_corrupted: u64,
    /// Copies sent again by replay attackers, and malformed frames sent by floods.
    pub frames_replayed: u64,
    pub frames_flooded: u64,
    /// Timer wake-ups that found nothing due and asked again for the same instant. Zero in a
    /// healthy run; counted because a core bug here would otherwise hang the simulator.
    pub timer_spins: u64,
}

impl std::ops::AddAssign<&EngineStats> for EngineStats {
    fn add_assign(&mut self, o: &EngineStats) {
        let EngineStats {
            events,
            frames_sent,
            frames_delivered,
            frames_lost,
            frames_queue_dropped,
            frames_link_down,
            frames_to_stopped,
            frames_bounced,
            frames_pause_dropped,
            frames_misaddressed,
            frames_duplicated,
            frames_corrupted,
            frames_replayed,
            frames_flooded,
            timer_spins,
        } = o;
        self.events += events;
        self.frames_sent += frames_sent;
        self.frames_delivered += frames_delivered;
        self.frames_lost += frames_lost;
        self.frames_queue_dropped += frames_queue_dropped;
        self.frames_link_down += frames_link_down;
        self.frames_to_stopped += frames_to_stopped;
        self.frames_bounced += frames_bounced;
        self.frames_pause_dropped += frames_pause_dropped;
        self.frames_misaddressed += frames_misaddressed;
        self.frames_duplicated += frames_duplicated;
        self.frames_corrupted += frames_corrupted;
        self.frames_replayed += frames_replayed;
        self.frames_flooded += frames_flooded;
        self.timer_spins += timer_spins;
    }
}

/// Everything one seed produced.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub seed: u64,
    pub fingerprint: Digest,
    pub trace_records: u64,
    pub nodes: u32,
    pub links: usize,
    pub faults: Vec<(FaultRecord, FaultOutcome)>,
    pub counters: RunCounters,
    /// Probe success between warmup and the first fault: whether the hypothesis held
    /// before anything was broken.
    pub baseline_success: Option<f64>,
    pub loop_examples: Vec<LoopSample>,
    pub engine: EngineStats,
    pub sim_seconds: f64,
    /// Route-table entries summed over live nodes at the end.
    pub route_entries: u64,
    /// Memory held by live nodes at the end, summed, and how many nodes that is.
    pub state_bytes: StateBytes,
    pub live_nodes: u32,
    /// Partitions the run was split into (1: one core). Results do not depend on it.
    pub partitions: u32,
    /// The raw observations the metrics were computed from, for `x0 run --trace` and for
    /// anyone who wants to check a number by hand.
    pub trace: Trace,
}

/// Everything observed after warmup: node events, and every probe of every sampled pair.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    pub events: Vec<TimedEvent>,
    pub probes: Vec<ProbeRecord>,
    pub pairs: Vec<(NodeId, NodeId)>,
}

fn ns(d: Duration) -> u64 {
    duration_nanos(d)
}

/// What partitions read during a window and nobody changes until it ends.
struct World {
    links: Vec<Link>,
    /// Whether any link has a replay attacker on it: only then does a send look for one.
    replays: bool,
    gt: GroundTruth,
    warmup: u64,
    /// Nodes per partition: node `i` lives in partition `i / partition_nodes`.
    partition_nodes: u32,
}

impl World {
    fn partition_of(&self, node: u32) -> usize {
        (node / self.partition_nodes) as usize
    }
}

/// Who sends one copy of a frame to whom, over which link.
#[derive(Copy, Clone, Debug)]
struct Leg {
    from: u32,
    to: u32,
    /// The receiver's interface.
    iface: u16,
    link: u32,
    carried: Carried,
}

/// A frame for a node of another partition, handed over when the window ends.
#[derive(Copy, Clone)]
struct Crossing {
    at: u64,
    key: u64,
    leg: Leg,
    /// Its bytes: `outbox_bytes[start..start + len]`.
    start: u32,
    len: u32,
}

/// The nodes `first..first + nodes.len()` and everything their events touch.
struct Partition {
    first: u32,
    nodes: Vec<SimNode>,
    queue: AheadQueue<NodeEv>,
    pool: Pool,
    buf: Vec<u8>,
    now: u64,
    stats: EngineStats,
    control_bytes: u64,
    /// Node events since the last hand-over, in the order each node produced them.
    observed: Vec<TimedEvent>,
    outbox: Vec<Crossing>,
    outbox_bytes: Vec<u8>,
    /// Lent to the node an event is for, while it runs (see `Node::exchange_buffers`).
    lent: OutputBuffers,
}

impl Partition {
    fn sn(&mut self, i: u32) -> &mut SimNode {
        &mut self.nodes[(i - self.first) as usize]
    }

    fn local_now(&self, i: u32) -> Instant {
        self.nodes[(i - self.first) as usize].clock.local(self.now)
    }

    /// The key of the next event `origin`, a node of this partition, schedules: its id above
    /// its count, so events at one instant run in an order no partitioning changes.
    fn next_key(&mut self, origin: u32) -> u64 {
        let sn = self.sn(origin);
        debug_assert!(sn.scheduled < 1 << KEY_COUNT_BITS, "node {origin} scheduled 2^40 events");
        let key = u64::from(origin) << KEY_COUNT_BITS | sn.scheduled;
        sn.scheduled += 1;
        key
    }

    fn schedule(&mut self, origin: u32, t: u64, ev: NodeEv) {
        let key = self.next_key(origin);
        self.queue.push_keyed(t, key, ev);
    }

    /// Runs this partition's events before `limit`.
    fn run_window(&mut self, limit: u64, w: &World) {
        while let Some((t, ev)) = self.queue.pop_before(limit) {
            for (at, step) in PREFETCH_STEPS {
                if let Some(later) = self.queue.ahead(at) {
                    self.fetch_ahead(later, step);
                }
            }
            debug_assert!(t >= self.now, "event queue went back in time");
            self.now = t;
            self.stats.events += 1;
            match ev {
                NodeEv::Deliver { leg, pkt } => self.deliver(leg, pkt, w),
                NodeEv::Timer { node, generation } => self.timer(node, generation, w),
            }
        }
    }

    /// Asks for one step of the memory event `ev` will read.
    fn fetch_ahead(&self, ev: NodeEv, step: Step) {
        let (i, frame) = match ev {
            NodeEv::Deliver { leg, pkt } => (leg.to, Some((leg.iface, &self.pool.bufs[pkt as usize]))),
            NodeEv::Timer { node, .. } => (node, None),
        };
        // Only its address until the first step has fetched it: reading it here, a dozen
        // events early, stalled on the very miss this step asks for (7% of quiet seconds).
        let sn = &self.nodes[(i - self.first) as usize];
        match (step, frame) {
            (Step::Records, frame) => {
                prefetch_record(sn);
                if let Some((_, bytes)) = frame {
                    prefetch_record(bytes);
                }
            }
            (Step::Contents, frame) => {
                if let Some(node) = sn.node.as_deref() {
                    node.input_memory(prefetch);
                }
                match frame {
                    Some((_, bytes)) => prefetch_record(bytes.as_slice()),
                    // A timer is a hello round more often than not: a frame on every interface.
                    None => prefetch_record(sn.ifaces.as_slice()),
                }
            }
            (Step::Node(stage), Some((iface, bytes))) => {
                let Some(node) = sn.node.as_deref() else { return };
                node.datagram_memory(stage, IfIndex(iface), bytes, prefetch);
                // A data frame is forwarded on one of them.
                if stage == Lookahead::Tables && x0tta6bl4::wire::peek_frame(bytes).is_some_and(|(_, dst)| dst.is_some()) {
                    prefetch_record(sn.ifaces.as_slice());
                }
            }
            (Step::Node(_), None) => {}
        }
    }

    /// Starts `node` as node `i`'s process.
    fn start(&mut self, i: u32, mut node: Box<Node>, w: &World) {
        let local = self.local_now(i);
        let sn = self.sn(i);
        for _ in 0..sn.ifaces.len() {
            node.add_interface(local);
        }
        sn.node = Some(node);
        sn.status = Status::Running;
        self.drain(i, false, w);
    }

    fn stop(&mut self, i: u32, keep_state: bool) {
        let sn = &mut self.nodes[(i - self.first) as usize];
        if !keep_state {
            sn.node = None;
        }
        sn.status = Status::Stopped;
        sn.stopped_at = Some(self.now);
        sn.timer_generation += 1;
        sn.timer_at = None;
        for (_, _, pkt) in sn.inbox.drain(..) {
            self.pool.release(pkt);
        }
    }

    fn pause(&mut self, i: u32) {
        let sn = self.sn(i);
        sn.status = Status::Paused;
        sn.timer_generation += 1;
        sn.timer_at = None;
    }

    fn unpause(&mut self, i: u32, w: &World) {
        let local = self.local_now(i);
        let sn = self.sn(i);
        sn.status = Status::Running;
        let mut node = sn.node.take().expect("a paused node keeps its process");
        let inbox = std::mem::take(&mut sn.inbox);
        for &(iface, from, pkt) in &inbox {
            node.handle_datagram(local, IfIndex(iface), PeerAddr::synthetic(NodeId(from)), &self.pool.bufs[pkt as usize]);
            self.pool.release(pkt);
        }
        node.handle_timeout(local);
        let sn = self.sn(i);
        sn.inbox = inbox;
        sn.inbox.clear();
        sn.node = Some(node);
        self.drain(i, false, w);
    }

    fn resume_kept(&mut self, i: u32, w: &World) {
        let local = self.local_now(i);
        let sn = self.sn(i);
        sn.status = Status::Running;
        sn.node.as_mut().expect("restart with state keeps the node").resume(local);
        self.drain(i, false, w);
    }

    /// Makes a running node misbehave (or behave again); a stopped one is left alone.
    fn set_behaviour(&mut self, i: u32, behaviour: Behaviour, w: &World) {
        let local = self.local_now(i);
        let sn = self.sn(i);
        if sn.status != Status::Running {
            return;
        }
        sn.node.as_mut().expect("a running node has a process").set_behaviour(local, behaviour);
        self.drain(i, false, w);
    }

    /// After a clock change the node's next deadline maps to a different global time.
    fn rearm(&mut self, i: u32, w: &World) {
        let sn = self.sn(i);
        if sn.status == Status::Running {
            sn.timer_at = None;
            sn.timer_generation += 1;
            self.drain(i, false, w);
        }
    }

    /// Collects everything node `i` produced after an input, and re-arms its timer.
    /// `after_timer` says the input was a timer at `now`, to catch a node asking to be woken
    /// again for the same instant.
    fn drain(&mut self, i: u32, after_timer: bool, w: &World) {
        let Some(mut node) = self.sn(i).node.take() else { return };
        let mut buf = std::mem::take(&mut self.buf);
        while let Some(tx) = node.poll_transmit(&mut buf) {
            self.transmit(i, tx.iface, tx.dest, tx.class, &buf, w);
        }
        while node.poll_delivery(&mut buf).is_some() {}
        self.buf = buf;
        let t = Instant::from_nanos(self.now);
        while let Some(event) = node.poll_event() {
            self.observed.push(TimedEvent { t, node: NodeId(i), event });
        }
        let now = self.now;
        let sn = self.sn(i);
        let mut want = sn.clock.global(node.poll_timeout()).max(now);
        if after_timer && want <= now {
            self.stats.timer_spins += 1;
            want = now + 1_000;
        }
        let sn = self.sn(i);
        sn.node = Some(node);
        if sn.timer_at.is_none_or(|t| want < t) {
            sn.timer_generation += 1;
            sn.timer_at = Some(want);
            let generation = sn.timer_generation;
            self.schedule(i, want, NodeEv::Timer { node: i, generation });
        }
    }

    fn transmit(&mut self, from: u32, iface: IfIndex, dest: Dest, class: TrafficClass, bytes: &[u8], w: &World) {
        self.stats.frames_sent += 1;
        if class != TrafficClass::Data && self.now >= w.warmup {
            self.control_bytes += bytes.len() as u64;
        }
        let now = self.now;
        let port = &mut self.nodes[(from - self.first) as usize].ifaces[iface.index()];
        let (link_idx, to, to_iface) = (port.link, port.peer, port.peer_iface);
        if let Dest::Unicast(addr) = dest
            && addr != PeerAddr::synthetic(NodeId(to))
        {
            self.stats.frames_misaddressed += 1;
            return;
        }
        if !w.gt.link_up(link_idx) {
            self.stats.frames_link_down += 1;
            return;
        }
        let carried = if matches!(dest, Dest::Unicast(_)) { Carried::Unicast } else { Carried::Multicast };
        match port.tx.send(now, bytes.len()) {
            Fate::Lost => self.stats.frames_lost += 1,
            Fate::QueueFull => self.stats.frames_queue_dropped += 1,
            Fate::Delivered { at_ns, duplicate_at_ns, corrupt } => {
                let corrupt = corrupt.map(|(offset, mask)| {
                    self.stats.frames_corrupted += 1;
                    (offset as usize % bytes.len(), mask)
                });
                let leg = Leg { from, to, iface: to_iface, link: link_idx, carried };
                self.send_copy(leg, at_ns, bytes, corrupt, w);
                if w.replays {
                    for &(_, delay) in &w.links[link_idx as usize].replays {
                        self.stats.frames_replayed += 1;
                        self.send_copy(leg, at_ns + delay, bytes, None, w);
                    }
                }
                if let Some(t) = duplicate_at_ns {
                    self.stats.frames_duplicated += 1;
                    self.send_copy(leg, t, bytes, None, w);
                }
            }
        }
    }

    /// Puts one copy of a frame on its way: into this partition's queue, or into the
    /// outbox when its receiver lives in another partition. `corrupt` flips one byte.
    fn send_copy(&mut self, leg: Leg, at: u64, bytes: &[u8], corrupt: Option<(usize, u8)>, w: &World) {
        let (from, to) = (leg.from, leg.to);
        let key = self.next_key(from);
        if w.partition_of(to) == w.partition_of(from) {
            let pkt = self.pool.alloc(bytes);
            if let Some((at, mask)) = corrupt {
                self.pool.bufs[pkt as usize][at] ^= mask;
            }
            self.queue.push_keyed(at, key, NodeEv::Deliver { leg, pkt });
        } else {
            let start = self.outbox_bytes.len();
            self.outbox_bytes.extend_from_slice(bytes);
            if let Some((at, mask)) = corrupt {
                self.outbox_bytes[start + at] ^= mask;
            }
            self.outbox.push(Crossing { at, key, leg, start: start as u32, len: bytes.len() as u32 });
        }
    }

    fn deliver(&mut self, leg: Leg, pkt: u32, w: &World) {
        let Leg { from, to, iface, link, carried } = leg;
        if !w.gt.link_up(link) {
            // The link went down while the frame was on it.
            self.stats.frames_link_down += 1;
            self.pool.release(pkt);
            return;
        }
        let sn = &mut self.nodes[(to - self.first) as usize];
        match sn.status {
            // A report for a node that has stopped or frozen since it sent the frame: the
            // process it was for is gone, or would read it stale (no error queue is kept).
            Status::Stopped | Status::Paused if carried == Carried::Bounce => self.pool.release(pkt),
            Status::Stopped if carried == Carried::Unicast => {
                self.stats.frames_to_stopped += 1;
                self.bounce(to, iface, link, pkt, w);
            }
            Status::Stopped => {
                self.stats.frames_to_stopped += 1;
                self.pool.release(pkt);
            }
            Status::Paused => {
                if sn.inbox.len() < PAUSE_BUFFER_PACKETS {
                    sn.inbox.push_back((iface, from, pkt));
                } else {
                    self.stats.frames_pause_dropped += 1;
                    self.pool.release(pkt);
                }
            }
            Status::Running => {
                let from = PeerAddr::synthetic(NodeId(from));
                let local = sn.clock.local(self.now);
                let node = sn.node.as_mut().expect("a running node has a process");
                let lent = node.exchange_buffers(&mut self.lent);
                let bytes = &self.pool.bufs[pkt as usize];
                if carried == Carried::Bounce {
                    node.handle_unreachable(local, IfIndex(iface), from, bytes);
                } else {
                    self.stats.frames_delivered += 1;
                    node.handle_datagram(local, IfIndex(iface), from, bytes);
                }
                self.pool.release(pkt);
                self.drain(to, false, w);
                self.take_back(to, lent);
            }
        }
    }

    /// Node `at` has no process, but its host is up: it answers a unicast frame that
    /// reached it on `iface` with a port unreachable quoting the frame, sent back over the
    /// same link as any frame of its own. (Linux rate-limits these per destination, with a
    /// burst of six; a report is answered long before a neighbour could spend that.)
    fn bounce(&mut self, at: u32, iface: u16, link: u32, pkt: u32, w: &World) {
        let now = self.now;
        let port = &mut self.nodes[(at - self.first) as usize].ifaces[usize::from(iface)];
        let (to, to_iface) = (port.peer, port.peer_iface);
        match port.tx.send(now, self.pool.bufs[pkt as usize].len()) {
            Fate::Lost | Fate::QueueFull => {}
            Fate::Delivered { at_ns, .. } => {
                self.stats.frames_bounced += 1;
                let leg = Leg { from: at, to, iface: to_iface, link, carried: Carried::Bounce };
                let bytes = std::mem::take(&mut self.pool.bufs[pkt as usize]);
                self.send_copy(leg, at_ns, &bytes, None, w);
                self.pool.bufs[pkt as usize] = bytes;
            }
        }
        self.pool.release(pkt);
    }

    fn timer(&mut self, i: u32, generation: u32, w: &World) {
        let now = self.now;
        let sn = &mut self.nodes[(i - self.first) as usize];
        if generation != sn.timer_generation || sn.status != Status::Running {
            return;
        }
        sn.timer_at = None;
        let local = sn.clock.local(now);
        let node = sn.node.as_mut().expect("a running node has a process");
        let lent = node.exchange_buffers(&mut self.lent);
        node.handle_timeout(local);
        self.drain(i, true, w);
        self.take_back(i, lent);
    }

    /// Takes back the buffers lent to node `i` for an event, now that it is drained. Only
    /// the two events nearly all time goes to (a frame, a timer) borrow them; others use
    /// the node's own.
    fn take_back(&mut self, i: u32, lent: bool) {
        if lent {
            let node = self.nodes[(i - self.first) as usize].node.as_mut().expect("draining keeps the process");
            let back = node.exchange_buffers(&mut self.lent);
            debug_assert!(back, "a drained node has no output waiting");
        }
    }

    /// Each node's next hop toward each of `dests`, into `rows` (`dests.len()` entries per
    /// node, in node order); `NO_HOP` where forwarding stops (no route, no process).
    fn next_hops(&self, dests: &[NodeId], rows: &mut [u32]) {
        for (k, (sn, row)) in self.nodes.iter().zip(rows.chunks_exact_mut(dests.len())).enumerate() {
            // The nodes are visited in order, so the ones a few places on are known: their
            // processes and route tables are fetched ahead, as events' are.
            for (at, step) in CHECK_PREFETCH_STEPS {
                let Some(later) = self.nodes.get(k + at).and_then(SimNode::process) else { continue };
                match step {
                    None => later.input_memory(prefetch),
                    Some(stage) => dests.iter().for_each(|&d| later.route_memory(stage, d, &mut prefetch)),
                }
            }
            let Some(node) = sn.process() else { continue };
            for (&dest, hop) in dests.iter().zip(row.iter_mut()) {
                *hop = node.next_hop(dest).map_or(NO_HOP, |h| h.0);
            }
        }
    }
}

pub struct Simulation<'a> {
    scenario: &'a Scenario,
    topo: &'a Topology,
    /// The scenario's protocol section plus the topology's area plan: what every node runs,
    /// one copy shared by all (see `Node::new`).
    protocol: Arc<ProtocolConfig>,
    /// Present when the scenario asks for link security.
    identities: Option<Identities>,
    seed: u64,
    now: u64,
    end: u64,
    /// The longest window partitions may run without hearing from each other: the smallest
    /// link latency. Zero means one partition and windows that end only at world events.
    lookahead: u64,
    world: World,
    partitions: Vec<Partition>,
    queue: EventQueue<WorldEv>,
    /// Node events of a window, gathered from every partition and sorted.
    observed: Vec<TimedEvent>,
    rec: Recorder,
    instances: Vec<Instance>,
    loops: u64,
    loop_examples: Vec<LoopSample>,
    /// The loop checker's hop matrix: for each node, its next hop toward each destination
    /// of the batch being checked (`NO_HOP`: none). Kept to reuse its allocation.
    loop_hops: Vec<u32>,
    stretch: Vec<f64>,
    check_rng: ChaCha8Rng,
    fingerprint: Fingerprint,
    /// World events run.
    world_events: u64,
}

impl<'a> Simulation<'a> {
    /// Builds the world for one seed: nodes, links, workload, fault schedule. The run is
    /// split into at most `partitions` partitions that run in parallel (see the module comment);
    /// results do not depend on it.
    pub fn new(scenario: &'a Scenario, topo: &'a Topology, seed: u64, partitions: usize) -> Result<Self, SimError> {
        scenario.check_node_ids(topo.node_count())?;
        check_links(scenario, topo)?;
        let n = topo.node_count();
        assert!(n < NODES_MAX, "{n} nodes: event keys hold node ids below {NODES_MAX}");
        let gt = GroundTruth::new(n, &topo.edge_list());
        let mut nodes: Vec<SimNode> = (0..n)
            .map(|_| SimNode {
                node: None,
                status: Status::Stopped,
                ifaces: Vec::new(),
                timer_generation: 0,
                timer_at: None,
                clock: NodeClock::default(),
                boots: 0,
                stopped_at: None,
                inbox: VecDeque::new(),
                posing_as: None,
                scheduled: 0,
            })
            .collect();
        let mut links = Vec::with_capacity(topo.edge_count());
        let mut lookahead = u64::MAX;
        for e in topo.graph.edge_references() {
            let (a, b) = (e.source().index(), e.target().index());
            let info = e.weight();
            let id = e.id().index() as u64;
            let delivery = |i: usize| info.delivery.map(|d| d[i]);
            let dir = |i: usize| {
                let p = LinkParams::new(&scenario.links, info.latency, delivery(i));
                Direction::new(p, seed::stream(seed, "link", id, i as u64))
            };
            let (da, db) = (dir(0), dir(1));
            // Impairments only add delay, so the base latency bounds every arrival.
            lookahead = lookahead.min(da.params.latency_ns).min(db.params.latency_ns);
            let base = [da.params, db.params];
            let ia = IfIndex(nodes[a].ifaces.len() as u16);
            let ib = IfIndex(nodes[b].ifaces.len() as u16);
            nodes[a].ifaces.push(Iface { link: id as u32, peer: b as u32, peer_iface: ib.0, tx: da });
            nodes[b].ifaces.push(Iface { link: id as u32, peer: a as u32, peer_iface: ia.0, tx: db });
            links.push(Link {
                ends: [NodeId(a as u32), NodeId(b as u32)],
                ifaces: [ia, ib],
                base,
                degrades: Vec::new(),
                replays: Vec::new(),
            });
        }
        let lookahead = if lookahead == u64::MAX { 0 } else { lookahead };
        let partitions = if lookahead == 0 { 1 } else { partitions.clamp(1, n.max(1) as usize) };
        let partition_nodes = n.div_ceil(partitions as u32).max(1);
        let mut partition_list = Vec::with_capacity(partitions);
        let mut rest = nodes.into_iter();
        for s in 0..partitions as u32 {
            partition_list.push(Partition {
                first: s * partition_nodes,
                nodes: rest.by_ref().take(partition_nodes as usize).collect(),
                queue: AheadQueue::new(AHEAD_EVENTS),
                pool: Pool::default(),
                buf: Vec::with_capacity(2048),
                now: 0,
                stats: EngineStats::default(),
                control_bytes: 0,
                observed: Vec::new(),
                outbox: Vec::new(),
                outbox_bytes: Vec::new(),
                lent: OutputBuffers::default(),
            });
        }
        let workload = probe_workload(scenario, n, seed);
        let pairs = workload.iter().map(|&(pair, _)| pair).collect();
        let mut sim = Simulation {
            scenario,
            topo,
            protocol: Arc::new(topo.node_protocol(&scenario.protocol)),
            identities: scenario.security.as_ref().map(|s| Identities::new(s, seed, n)),
            seed,
            now: 0,
            end: ns(scenario.duration),
            lookahead,
            world: World { links, replays: false, gt, warmup: ns(scenario.warmup), partition_nodes },
            partitions: partition_list,
            queue: EventQueue::default(),
            observed: Vec::new(),
            rec: Recorder::new(Instant::from_nanos(ns(scenario.warmup)), pairs),
            instances: Vec::new(),
            loops: 0,
            loop_examples: Vec::new(),
            loop_hops: Vec::new(),
            stretch: Vec::new(),
            check_rng: seed::stream(seed, "checks", 0, 0),
            fingerprint: Fingerprint::default(),
            world_events: 0,
        };
        for (pair, &(_, phase)) in workload.iter().enumerate() {
            sim.queue.push(phase, WorldEv::Probe { pair: pair as u32 });
        }
        sim.schedule_faults();
        let (loop_every, stretch_every) = (ns(scenario.checks.loop_interval), ns(scenario.checks.stretch_interval));
        sim.queue.push(loop_every, WorldEv::LoopCheck);
        sim.queue.push(sim.world.warmup.max(stretch_every), WorldEv::StretchCheck);
        for i in 0..n {
            sim.boot(i);
        }
        sim.hand_over();
        Ok(sim)
    }

    fn schedule_faults(&mut self) {
        for (spec, fault) in self.scenario.faults.iter().enumerate() {
            for (k, t) in fault.injection_times(self.scenario.duration).into_iter().enumerate() {
                let t_inject = ns(t);
                let t_heal = fault.heal_time(t).map(ns);
                let instance = self.instances.len() as u32;
                self.instances.push(Instance {
                    spec: spec as u32,
                    k: k as u32,
                    t_heal,
                    nodes: Vec::new(),
                    links: Vec::new(),
                    flap_down: false,
                    flood_rng: None,
                });
                self.queue.push(t_inject, WorldEv::Inject { instance });
                if let Some(h) = t_heal
                    && h < self.end
                {
                    self.queue.push(h, WorldEv::Heal { instance });
                }
            }
        }
    }

    // ----- node lifecycle, between windows ---------------------------------------------------

    /// Node `i`'s partition, brought to the current time, and the world it reads.
    fn partition(&mut self, i: u32) -> (&mut Partition, &World) {
        let partition = &mut self.partitions[self.world.partition_of(i)];
        partition.now = self.now;
        (partition, &self.world)
    }

    fn sim_node(&self, i: u32) -> &SimNode {
        let partition = &self.partitions[self.world.partition_of(i)];
        &partition.nodes[(i - partition.first) as usize]
    }

    /// Starts node `i` as a fresh process.
    fn boot(&mut self, i: u32) {
        let local = self.sim_node(i).clock.local(self.now);
        let (seed, protocol) = (self.seed, Arc::clone(&self.protocol));
        let identities = self.identities.as_mut();
        let partition = &mut self.partitions[self.world.partition_of(i)];
        let sn = partition.sn(i);
        let key = seed::key(seed, "node", u64::from(i), sn.boots);
        sn.boots += 1;
        let gone_for = sn.stopped_at.map(|t| Duration::from_nanos(self.now - t));
        let node = match identities {
            Some(ids) => {
                let trust = match sn.posing_as {
                    Some(victim) => ids.impostor(i, victim),
                    None => ids.trust(i),
                };
                Node::new_secure(protocol, trust, key, local)
            }
            None => Node::new(NodeId(i), protocol, key, local),
        };
        let mut node = Box::new(node.expect("protocol config validated at load"));
        node.set_previous_run(gone_for);
        let (partition, world) = self.partition(i);
        partition.start(i, node, world);
    }

    // ----- the loop -------------------------------------------------------------------------

    /// Runs to the end of the scenario and evaluates every fault.
    pub fn run(mut self, progress: Option<&AtomicU64>) -> RunResult {
        loop {
            let next_world = self.queue.peek_time();
            let next_node = self.partitions.iter().filter_map(|p| p.queue.peek_time()).min();
            let Some(start) = next_world.into_iter().chain(next_node).min() else { break };
            if start > self.end {
                break;
            }
            self.now = start;
            if next_world == Some(start) {
                while let Some((_, ev)) = self.queue.pop_before(start + 1) {
                    self.world_event(ev);
                }
            } else {
                // One partition needs no windows: the order of events and of the hand-over is the
                // same whatever their length.
                let window = if self.partitions.len() == 1 { u64::MAX } else { start + self.lookahead };
                let limit = window.min(next_world.unwrap_or(u64::MAX)).min(self.end + 1);
                let world = &self.world;
                match self.partitions.as_mut_slice() {
                    [one] => one.run_window(limit, world),
                    all => all.par_iter_mut().for_each(|p| p.run_window(limit, world)),
                }
            }
            self.hand_over();
            if let Some(p) = progress {
                p.store(self.now, AtomicOrdering::Relaxed);
            }
        }
        if let Some(p) = progress {
            p.store(self.end, AtomicOrdering::Relaxed);
        }
        self.finish()
    }

    /// Between windows: frames move to the partitions of their receivers, and node events reach
    /// the fingerprint and the recorder in (time, node) order.
    fn hand_over(&mut self) {
        for s in 0..self.partitions.len() {
            // Taken out while other partitions' queues fill from them, then put back empty
            // so their allocations are reused.
            let mut outbox = std::mem::take(&mut self.partitions[s].outbox);
            let mut bytes = std::mem::take(&mut self.partitions[s].outbox_bytes);
            for c in outbox.drain(..) {
                let dst = &mut self.partitions[self.world.partition_of(c.leg.to)];
                let pkt = dst.pool.alloc(&bytes[c.start as usize..(c.start + c.len) as usize]);
                dst.queue.push_keyed(c.at, c.key, NodeEv::Deliver { leg: c.leg, pkt });
            }
            bytes.clear();
            let partition = &mut self.partitions[s];
            partition.outbox = outbox;
            partition.outbox_bytes = bytes;
            self.observed.append(&mut partition.observed);
        }
        let mut observed = std::mem::take(&mut self.observed);
        // Into (time, node) order, stably: one node's events stay in the order it produced
        // them. Each partition's are in time order already, so one partition's need sorting
        // only among events of one instant; a whole sort, at the cold start's tens of
        // thousands of route events per hand-over, was a twelfth of its instructions.
        if !observed.is_sorted_by_key(|e| e.t) {
            observed.sort_by_key(|e| e.t);
        }
        for instant in observed.chunk_by_mut(|a, b| a.t == b.t) {
            instant.sort_by_key(|e| e.node);
        }
        for e in observed.drain(..) {
            self.observe(e);
        }
        self.observed = observed;
    }

    fn observe(&mut self, e: TimedEvent) {
        self.fingerprint.event(e.t, e.node, &e.event);
        match e.event {
            Event::Probe { id, outcome, .. } => {
                self.rec.probe_outcome(id, matches!(outcome, ProbeOutcome::Delivered { .. }));
                return;
            }
            Event::Neighbour { peer, state: NeighbourState::Down, .. } => {
                // The ground truth has not changed since the event: world events wait for
                // the hand-over.
                let grace = self.scenario.checks.false_positive_grace;
                if e.t.as_nanos() >= self.world.warmup && self.world.gt.is_false_positive(e.node, peer, e.t, grace) {
                    self.rec.false_positive(e.t);
                }
            }
            _ => {}
        }
        self.rec.event(e);
    }

    fn world_event(&mut self, ev: WorldEv) {
        self.world_events += 1;
        match ev {
            WorldEv::Inject { instance } => self.inject(instance),
            WorldEv::Heal { instance } => self.heal(instance),
            WorldEv::Flap { instance } => self.flap(instance),
            WorldEv::Flood { instance } => self.flood(instance),
            WorldEv::Probe { pair } => self.probe(pair),
            WorldEv::LoopCheck => self.loop_check(),
            WorldEv::StretchCheck => self.stretch_check(),
        }
    }

    fn probe(&mut self, pair: u32) {
        let interval = ns(self.scenario.workload.probe_interval);
        self.queue.push(self.now + interval, WorldEv::Probe { pair });
        let (src, dst) = self.rec.pairs()[pair as usize];
        let path = self.world.gt.path_exists(src, dst);
        let running = self.sim_node(src.0).status == Status::Running;
        // A probe a stopped or frozen source cannot send has no outcome, and is left out.
        let id = self.rec.probe_sent(Instant::from_nanos(self.now), pair, path && running);
        if !running {
            return;
        }
        let (partition, world) = self.partition(src.0);
        let local = partition.local_now(src.0);
        let node = partition.sn(src.0).node.as_mut().expect("a running node has a process");
        let sent = node.handle_command(local, Command::Probe { dst, id }).is_ok();
        partition.drain(src.0, false, world);
        if !sent {
            self.rec.probe_outcome(id, false);
        }
    }

    /// Looks for forwarding loops toward a few random destinations. Each destination needs
    /// every node's next hop, which at 10,000 nodes costs more than the rest of the
    /// simulation: nodes are visited once per batch of destinations (see `LOOP_BATCH_MAX`),
    /// by their partitions in parallel when the run has several, and the walks then follow
    /// the hop matrix.
    fn loop_check(&mut self) {
        self.queue.push(self.now + ns(self.scenario.checks.loop_interval), WorldEv::LoopCheck);
        let n = self.topo.node_count();
        let dests: Vec<NodeId> =
            (0..self.scenario.checks.loop_destinations).map(|_| NodeId(self.check_rng.random_range(0..n))).collect();
        let mut hops = std::mem::take(&mut self.loop_hops);
        let mut cycles = Vec::with_capacity(dests.len());
        for batch in dests.chunks(LOOP_BATCH_MAX) {
            let k = batch.len();
            hops.clear();
            hops.resize(n as usize * k, NO_HOP);
            let parallel = self.partitions.len() > 1;
            let rows: Vec<(&Partition, &mut [u32])> =
                self.partitions.iter().zip(hops.chunks_mut(self.world.partition_nodes as usize * k)).collect();
            let fill = |(partition, rows): (&Partition, &mut [u32])| partition.next_hops(batch, rows);
            if parallel { rows.into_par_iter().for_each(fill) } else { rows.into_iter().for_each(fill) }
            let hops = &hops;
            let check = |j: usize| {
                checkers::find_loop(n, batch[j], |m| Some(hops[m.index() * k + j]).filter(|&h| h != NO_HOP).map(NodeId))
            };
            if parallel { cycles.par_extend((0..k).into_par_iter().map(check)) } else { cycles.extend((0..k).map(check)) }
        }
        self.loop_hops = hops;
        for (dest, cycle) in dests.into_iter().zip(cycles) {
            if let Some(cycle) = cycle {
                self.loops += 1;
                self.fingerprint.driver(1, &[self.now, u64::from(dest.0), cycle.len() as u64]);
                if self.loop_examples.len() < LOOP_EXAMPLES_MAX {
                    self.loop_examples.push(LoopSample { at: Instant::from_nanos(self.now), dest, cycle });
                }
            }
        }
    }

    fn stretch_check(&mut self) {
        self.queue.push(self.now + ns(self.scenario.checks.stretch_interval), WorldEv::StretchCheck);
        let n = self.topo.node_count();
        for _ in 0..self.scenario.checks.stretch_pairs {
            let (src, dst) = (NodeId(self.check_rng.random_range(0..n)), NodeId(self.check_rng.random_range(0..n)));
            if src == dst || !self.world.gt.path_exists(src, dst) {
                continue;
            }
            if let Some(s) = checkers::stretch(&self.topo.graph, &self.world.gt, src, dst, |m| next_hop(&self.partitions, &self.world, m, dst)) {
                self.stretch.push(s);
            }
        }
    }

    // ----- faults ---------------------------------------------------------------------------

    fn stop(&mut self, i: u32, keep_state: bool) {
        self.partition(i).0.stop(i, keep_state);
    }

    fn set_behaviour(&mut self, i: u32, behaviour: Behaviour) {
        let (partition, world) = self.partition(i);
        partition.set_behaviour(i, behaviour, world);
    }

    fn adjust_clock(&mut self, i: u32, skew_ns: i64, drift_ppm: i64) {
        let now = self.now;
        let (partition, world) = self.partition(i);
        partition.sn(i).clock.adjust(now, skew_ns, drift_ppm);
        partition.rearm(i, world);
    }

    fn inject(&mut self, instance: u32) {
        let inst = &self.instances[instance as usize];
        let (spec, k) = (inst.spec, inst.k);
        let fault = &self.scenario.faults[spec as usize];
        let mut rng = seed::stream(self.seed, "fault", u64::from(spec), u64::from(k));
        let now = Instant::from_nanos(self.now);
        let (mut nodes, mut links) = (Vec::new(), Vec::new());
        match &fault.kind {
            FaultKind::Crash(t) | FaultKind::Pause(t) => {
                nodes = faults::pick_nodes(t, self.topo, &self.world.gt, &mut rng);
                let pause = matches!(fault.kind, FaultKind::Pause(_));
                for &n in &nodes {
                    if pause { self.partition(n.0).0.pause(n.0) } else { self.stop(n.0, false) }
                    self.world.gt.set_node(n, true, now);
                }
            }
            FaultKind::Restart { target, state } => {
                nodes = faults::pick_nodes(target, self.topo, &self.world.gt, &mut rng);
                for &n in &nodes {
                    self.stop(n.0, *state == StateMode::Keep);
                    self.world.gt.set_node(n, true, now);
                }
            }
            FaultKind::LinkDown(t) | FaultKind::LinkFlap { target: t, .. } => {
                links = faults::pick_links(t, self.topo, &self.world.gt, &mut rng);
                for &e in &links {
                    self.world.gt.set_link(e, true, now);
                }
                if let FaultKind::LinkFlap { period, .. } = fault.kind {
                    self.instances[instance as usize].flap_down = true;
                    self.queue.push(self.now + ns(period) / 2, WorldEv::Flap { instance });
                }
            }
            FaultKind::Partition(p) => {
                let groups = faults::partition_groups(p, self.topo, &mut rng);
                links = faults::cut_edges(&groups, self.topo);
                for &e in &links {
                    self.world.gt.set_link(e, true, now);
                }
            }
            FaultKind::Degrade(d) => {
                links = faults::pick_links(&d.target, self.topo, &self.world.gt, &mut rng);
                for &e in &links {
                    self.world.links[e as usize].degrades.push((instance, d.clone()));
                    self.apply_degrades(e);
                }
            }
            FaultKind::Clock { target, skew_ns, drift_ppm } => {
                nodes = faults::pick_nodes(target, self.topo, &self.world.gt, &mut rng);
                for &n in &nodes {
                    self.adjust_clock(n.0, *skew_ns, i64::from(*drift_ppm));
                    self.world.gt.touch_node(n, now);
                }
            }
            FaultKind::Blackhole(t) | FaultKind::GreyHole { target: t, .. } => {
                nodes = faults::pick_nodes(t, self.topo, &self.world.gt, &mut rng);
                let behaviour = match fault.kind {
                    FaultKind::GreyHole { drop, .. } => Behaviour::GreyHole { drop },
                    _ => Behaviour::Blackhole,
                };
                for &n in &nodes {
                    self.set_behaviour(n.0, behaviour);
                }
            }
            FaultKind::Replay { target, delay } => {
                links = faults::pick_links(target, self.topo, &self.world.gt, &mut rng);
                for &e in &links {
                    self.world.links[e as usize].replays.push((instance, ns(*delay)));
                }
                self.world.replays = true;
            }
            FaultKind::Impersonate { target, victim } => {
                nodes = faults::pick_nodes(target, self.topo, &self.world.gt, &mut rng);
                nodes.retain(|n| n.0 != victim.value);
                for &n in &nodes {
                    // Its honest self is gone: to the ground truth it is down.
                    self.stop(n.0, false);
                    self.world.gt.set_node(n, true, now);
                    self.partition(n.0).0.sn(n.0).posing_as = Some(victim.value);
                    self.boot(n.0);
                }
            }
            FaultKind::MalformedFlood { target, .. } => {
                nodes = faults::pick_nodes(target, self.topo, &self.world.gt, &mut rng);
                self.instances[instance as usize].flood_rng = Some(rng.clone());
                self.queue.push(self.now, WorldEv::Flood { instance });
            }
        }
        self.fingerprint.driver(2, &[self.now, u64::from(spec), u64::from(k), nodes.len() as u64, links.len() as u64]);
        let t_heal = self.instances[instance as usize].t_heal.map(Instant::from_nanos);
        let ends = links.iter().map(|&e| {
            let [a, b] = self.world.links[e as usize].ends;
            (a, b)
        });
        let record = FaultRecord::new(spec, k, fault, now, t_heal, nodes.clone(), ends);
        self.rec.fault(record);
        let inst = &mut self.instances[instance as usize];
        inst.nodes = nodes;
        inst.links = links;
    }

    fn heal(&mut self, instance: u32) {
        let inst = &self.instances[instance as usize];
        let fault = &self.scenario.faults[inst.spec as usize];
        let now = Instant::from_nanos(self.now);
        let (nodes, links) = (inst.nodes.clone(), inst.links.clone());
        let flap_down = inst.flap_down;
        match &fault.kind {
            FaultKind::Crash(_) => {
                for &n in &nodes {
                    self.world.gt.set_node(n, false, now);
                    self.boot(n.0);
                }
            }
            FaultKind::Restart { state, .. } => {
                for &n in &nodes {
                    self.world.gt.set_node(n, false, now);
                    if *state == StateMode::Keep {
                        let (partition, world) = self.partition(n.0);
                        partition.resume_kept(n.0, world);
                    } else {
                        self.boot(n.0);
                    }
                }
            }
            FaultKind::Pause(_) => {
                for &n in &nodes {
                    self.world.gt.set_node(n, false, now);
                    let (partition, world) = self.partition(n.0);
                    partition.unpause(n.0, world);
                }
            }
            FaultKind::LinkDown(_) | FaultKind::Partition(_) => {
                for &e in &links {
                    self.world.gt.set_link(e, false, now);
                }
            }
            FaultKind::LinkFlap { .. } => {
                if flap_down {
                    for &e in &links {
                        self.world.gt.set_link(e, false, now);
                    }
                }
                self.instances[instance as usize].flap_down = false;
            }
            FaultKind::Degrade(_) => {
                for &e in &links {
                    self.world.links[e as usize].degrades.retain(|(i, _)| *i != instance);
                    self.apply_degrades(e);
                }
            }
            FaultKind::Clock { drift_ppm, .. } => {
                for &n in &nodes {
                    self.adjust_clock(n.0, 0, -i64::from(*drift_ppm));
                    self.world.gt.touch_node(n, now);
                }
            }
            FaultKind::Blackhole(_) | FaultKind::GreyHole { .. } => {
                for &n in &nodes {
                    self.set_behaviour(n.0, Behaviour::Honest);
                }
            }
            FaultKind::Replay { .. } => {
                for &e in &links {
                    self.world.links[e as usize].replays.retain(|(i, _)| *i != instance);
                }
                self.world.replays = self.world.links.iter().any(|l| !l.replays.is_empty());
            }
            FaultKind::Impersonate { .. } => {
                for &n in &nodes {
                    self.stop(n.0, false);
                    self.partition(n.0).0.sn(n.0).posing_as = None;
                    self.world.gt.set_node(n, false, now);
                    self.boot(n.0);
                }
            }
            // The flood's own events stop at the heal time.
            FaultKind::MalformedFlood { .. } => {}
        }
        self.fingerprint.driver(3, &[self.now, u64::from(instance)]);
    }

    fn flap(&mut self, instance: u32) {
        let inst = &self.instances[instance as usize];
        let FaultKind::LinkFlap { period, .. } = self.scenario.faults[inst.spec as usize].kind else { return };
        if inst.t_heal.is_some_and(|h| self.now >= h) {
            return;
        }
        let now = Instant::from_nanos(self.now);
        let down = !inst.flap_down;
        for &e in &inst.links.clone() {
            self.world.gt.set_link(e, down, now);
        }
        self.instances[instance as usize].flap_down = down;
        self.fingerprint.driver(4, &[self.now, u64::from(instance), u64::from(down)]);
        self.queue.push(self.now + ns(period) / 2, WorldEv::Flap { instance });
    }

    /// One round of a malformed flood: a frame of random bytes from every flooding node on
    /// every interface, then the next round.
    fn flood(&mut self, instance: u32) {
        let inst = &self.instances[instance as usize];
        let FaultKind::MalformedFlood { rate_per_s, .. } = self.scenario.faults[inst.spec as usize].kind else { return };
        if inst.t_heal.is_some_and(|h| self.now >= h) {
            return;
        }
        let nodes = inst.nodes.clone();
        let mut rng = self.instances[instance as usize].flood_rng.take().expect("a flood has its stream");
        let mut frame = Vec::with_capacity(*FLOOD_FRAME_LEN.end());
        for n in nodes {
            let (partition, world) = self.partition(n.0);
            let sn = partition.sn(n.0);
            if sn.status != Status::Running {
                continue;
            }
            for iface in 0..sn.ifaces.len() as u16 {
                frame.clear();
                frame.resize(rng.random_range(FLOOD_FRAME_LEN), 0);
                rng.fill_bytes(&mut frame);
                partition.stats.frames_flooded += 1;
                partition.transmit(n.0, IfIndex(iface), Dest::Multicast, TrafficClass::Data, &frame, world);
            }
        }
        self.instances[instance as usize].flood_rng = Some(rng);
        self.queue.push(self.now + 1_000_000_000 / u64::from(rate_per_s), WorldEv::Flood { instance });
    }

    /// Sets both directions of link `e` to their base behaviour with the link's impairments
    /// on top. Each direction lives with its sending node.
    fn apply_degrades(&mut self, e: u32) {
        let link = &self.world.links[e as usize];
        for side in 0..2 {
            let (node, iface) = (link.ends[side].0, link.ifaces[side].index());
            let partition = &mut self.partitions[self.world.partition_of(node)];
            let tx = &mut partition.nodes[(node - partition.first) as usize].ifaces[iface].tx;
            tx.params = link.degrades.iter().fold(link.base[side], |p, (_, d)| p.degraded(d));
        }
    }

    // ----- results --------------------------------------------------------------------------

    fn finish(self) -> RunResult {
        let horizon = Instant::from_nanos(self.end);
        let checks = &self.scenario.checks;
        let eval = self.rec.finish(
            &self.scenario.steady_state,
            checks.recovery_window,
            checks.false_positive_grace,
            self.scenario.protocol.probe_timeout,
            horizon,
        );
        let mut engine = EngineStats { events: self.world_events, ..EngineStats::default() };
        let mut control_bytes = 0;
        let (mut route_entries, mut state_bytes, mut live_nodes) = (0, StateBytes::default(), 0);
        for partition in &self.partitions {
            engine += &partition.stats;
            control_bytes += partition.control_bytes;
            for node in partition.nodes.iter().filter_map(|n| n.node.as_ref()) {
                route_entries += node.destinations() as u64;
                state_bytes += node.state_bytes();
                live_nodes += 1;
            }
        }
        let counters = RunCounters {
            nodes: u64::from(self.topo.node_count()),
            loops: self.loops,
            false_positives: eval.false_positives,
            honest_isolated: eval.honest_isolated,
            probes: u64::from(eval.probes_total),
            probes_ok: u64::from(eval.probes_ok),
            control_bytes,
            measured_seconds: (self.end - self.world.warmup) as f64 / 1e9,
            stretch: self.stretch,
        };
        RunResult {
            seed: self.seed,
            fingerprint: self.fingerprint.digest(),
            trace_records: self.fingerprint.records(),
            nodes: self.topo.node_count(),
            links: self.topo.edge_count(),
            faults: eval.faults,
            counters,
            baseline_success: eval.baseline_success,
            loop_examples: self.loop_examples,
            engine,
            sim_seconds: self.end as f64 / 1e9,
            route_entries,
            state_bytes,
            live_nodes,
            partitions: self.partitions.len() as u32,
            trace: Trace { events: eval.events, probes: eval.probes, pairs: eval.pairs },
        }
    }
}

/// Where node `n` forwards toward `dest` now; `None` when it does not (no route, no process).
fn next_hop(partitions: &[Partition], world: &World, n: NodeId, dest: NodeId) -> Option<NodeId> {
    let partition = &partitions[world.partition_of(n.0)];
    partition.nodes[(n.0 - partition.first) as usize].process()?.next_hop(dest)
}

/// The probed pairs of a run and the phase (ns into the run) of each pair's first probe,
/// drawn from the seed: the live harness probes exactly the pairs the simulator does.
pub fn probe_workload(scenario: &Scenario, nodes: u32, seed: u64) -> Vec<((NodeId, NodeId), u64)> {
    let w = &scenario.workload;
    let mut rng = seed::stream(seed, "workload", 0, 0);
    let interval = ns(w.probe_interval);
    (0..w.probe_pairs)
        .map(|_| {
            let src = rng.random_range(0..nodes);
            let mut dst = rng.random_range(0..nodes - 1);
            if dst >= src {
                dst += 1;
            }
            ((NodeId(src), NodeId(dst)), rng.random_range(0..interval))
        })
        .collect()
}

/// Explicit link targets must name adjacent nodes; say which do not, and where.
fn check_links(scenario: &Scenario, topo: &Topology) -> Result<(), ScenarioError> {
    let gt_adjacent = |a: u32, b: u32| {
        topo.graph
            .find_edge(petgraph::graph::NodeIndex::new(a as usize), petgraph::graph::NodeIndex::new(b as usize))
            .is_some()
    };
    for (i, f) in scenario.faults.iter().enumerate() {
        let target = match &f.kind {
            FaultKind::LinkDown(t) | FaultKind::LinkFlap { target: t, .. } => t,
            FaultKind::Degrade(d) => &d.target,
            _ => continue,
        };
        if let LinkTarget::Links(pairs) = target {
            for (j, [a, b]) in pairs.iter().enumerate() {
                if !gt_adjacent(a.value, b.value) {
                    return Err(error_at(
                        &scenario.origin,
                        a.referenced,
                        format!(
                            "faults[{i}].{}: links[{j}] is [{}, {}], but nodes {} and {} are not linked in {}",
                            f.kind.label(),
                            a.value,
                            b.value,
                            a.value,
                            b.value,
                            topo.description
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Asks the processor to bring the cache lines of `bytes` bytes at `at` into its caches.
/// Only a hint: it reads nothing the program sees, so it changes no result.
#[inline(always)]
fn prefetch(at: *const u8, bytes: usize) {
    const LINE: usize = 64;
    #[cfg(target_arch = "x86_64")]
    {
        let mut line = at.addr() & !(LINE - 1);
        while line < at.addr() + bytes {
            // SAFETY: a prefetch is a hint that never faults, whatever the address, and the
            // pointer is never dereferenced. SSE is part of every x86_64 processor.
            unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at.with_addr(line).cast()) };
            line += LINE;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (at, bytes);
}

/// [`prefetch`] for the record (or slice of records) `at`.
#[inline(always)]
fn prefetch_record<T: ?Sized>(at: &T) {
    prefetch(std::ptr::from_ref(at).cast(), size_of_val(at));
}
