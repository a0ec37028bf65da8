//! The scenario model: what a chaos experiment is, as written in YAML.
//!
//! Parsing is pure (text in, model or error out): reading the file is the caller's job, so
//! the simulator, the live lab and the twin share one schema and one set of error messages.
//! Every error names the file, `line:column`, the field and what was expected, with a
//! snippet of the offending line. `scenarios/README.md` documents the schema field by field.

mod assertion;

pub use assertion::{Assertion, Comparison, Metric, Stat, Threshold};

use crate::config::ProtocolConfig;
use crate::units::{Bandwidth, Percent, Ppm, SignedDuration, serde_duration};
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};
use std::time::Duration;
use thiserror::Error;

/// A parsed, validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub description: Option<String>,
    /// First seed; a multi-seed run uses `seed, seed + 1, ...`.
    pub seed: u64,
    pub seeds: u32,
    pub duration: Duration,
    /// Time for the mesh to converge before anything is measured or injected.
    pub warmup: Duration,
    pub topology: TopologySpec,
    pub links: LinkSpec,
    pub protocol: ProtocolConfig,
    /// Route by areas of about this many nodes (see `crate::area`); `None`: flat routing.
    pub areas: Option<Areas>,
    /// Link security: every node gets an identity and admits neighbours by handshake.
    pub security: Option<LinkSecurity>,
    pub workload: Workload,
    pub steady_state: SteadyState,
    pub faults: Vec<Fault>,
    pub assertions: Vec<Assertion>,
    pub checks: Checks,
    /// Where it came from, for error messages about it after parsing.
    pub origin: Origin,
}

/// The text and name of a scenario, kept so that later checks (unknown node ids, once the
/// topology is known) can point into it like parse errors do.
#[derive(Debug, Clone)]
pub struct Origin {
    pub name: String,
    pub text: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default = "default_seed")]
    seed: u64,
    #[serde(default = "default_seeds")]
    seeds: Spanned<u32>,
    #[serde(with = "serde_duration")]
    duration: Duration,
    #[serde(default = "default_warmup", with = "serde_duration")]
    warmup: Duration,
    topology: TopologySpec,
    #[serde(default)]
    links: LinkSpec,
    #[serde(default = "default_protocol")]
    protocol: Spanned<ProtocolConfig>,
    #[serde(default)]
    areas: Option<Spanned<Areas>>,
    #[serde(default)]
    security: Option<LinkSecurity>,
    #[serde(default)]
    workload: Workload,
    #[serde(default)]
    steady_state: SteadyState,
    #[serde(default)]
    faults: Vec<Spanned<FaultFile>>,
    #[serde(default)]
    assertions: Vec<Assertion>,
    #[serde(default)]
    checks: Checks,
}

fn default_seed() -> u64 {
    1
}

fn default_seeds() -> Spanned<u32> {
    Spanned::new(1, Location::UNKNOWN, Location::UNKNOWN)
}

fn default_protocol() -> Spanned<ProtocolConfig> {
    Spanned::new(ProtocolConfig::default(), Location::UNKNOWN, Location::UNKNOWN)
}

fn default_warmup() -> Duration {
    Duration::from_secs(5)
}

/// How the graph is made. Generated graphs are numbered `0..nodes`; file graphs in file order.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TopologySpec {
    Ring {
        nodes: u32,
    },
    Line {
        nodes: u32,
    },
    Grid {
        rows: u32,
        cols: u32,
    },
    /// Nodes uniform in the unit square, linked when closer than `radius` (a unit-disk
    /// graph, the usual model of a wireless mesh). Give `radius` or a target mean `degree`.
    RandomGeometric {
        nodes: u32,
        #[serde(default)]
        radius: Option<f64>,
        #[serde(default)]
        degree: Option<f64>,
        /// Fixes the graph across run seeds; by default each run seed draws its own graph.
        #[serde(default)]
        seed: Option<u64>,
    },
    /// Every pair linked with probability `p` (or `p` chosen for a mean `degree`).
    ErdosRenyi {
        nodes: u32,
        #[serde(default)]
        p: Option<f64>,
        #[serde(default)]
        degree: Option<f64>,
        #[serde(default)]
        seed: Option<u64>,
    },
    /// Preferential attachment: each new node links to `m` existing ones.
    BarabasiAlbert {
        nodes: u32,
        m: u32,
        #[serde(default)]
        seed: Option<u64>,
    },
    /// A file: GraphML (Topology Zoo), meshnet-lab JSON, or a plain edge list. The path is
    /// relative to the scenario file.
    File {
        path: Spanned<String>,
        #[serde(default)]
        format: Option<FileFormat>,
        /// Drop links whose delivery probability (meshnet-lab `tq`) is below this in either
        /// direction: batman-adv keeps links a routing protocol would never use.
        #[serde(default)]
        min_delivery: Option<Percent>,
        /// Keep only the largest connected component (after `min_delivery`).
        #[serde(default)]
        largest_component: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    Graphml,
    Meshnet,
    Edgelist,
}

/// Defaults for every link; file topologies may override latency (GraphML coordinates)
/// and loss (meshnet-lab `tq`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinkSpec {
    #[serde(with = "serde_duration")]
    pub latency: Duration,
    /// Extra delay drawn uniformly from `[0, jitter]` per packet (order is kept).
    #[serde(with = "serde_duration")]
    pub jitter: Duration,
    pub loss: Percent,
    pub bandwidth: Bandwidth,
    /// Packets a link direction may hold waiting for the wire; more are dropped.
    pub queue: u32,
}

impl Default for LinkSpec {
    fn default() -> Self {
        LinkSpec {
            latency: Duration::from_millis(2),
            jitter: Duration::ZERO,
            loss: Percent::ZERO,
            bandwidth: Bandwidth::from_bps(100_000_000),
            queue: 100,
        }
    }
}

/// Background probe traffic that measures reachability.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Workload {
    /// Source-destination pairs sampled (from the seed) at start.
    pub probe_pairs: u32,
    /// Each pair sends one probe this often.
    #[serde(with = "serde_duration")]
    pub probe_interval: Duration,
}

impl Default for Workload {
    fn default() -> Self {
        Workload { probe_pairs: 100, probe_interval: Duration::from_millis(100) }
    }
}

/// The steady-state hypothesis: what "healthy" means, checked over a sliding window.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SteadyState {
    pub probe_success: Percent,
    #[serde(with = "serde_duration")]
    pub window: Duration,
}

impl Default for SteadyState {
    fn default() -> Self {
        SteadyState { probe_success: Percent::from_ppm(990_000), window: Duration::from_secs(1) }
    }
}

/// Hierarchical routing for large meshes: the simulator cuts the topology into connected
/// areas of about `size` nodes, numbers nodes area by area, and gives every node the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Areas {
    pub size: u32,
}

/// Link security in the simulator. Every node's ML-DSA-65 key and the trust anchor's key
/// are derived from the run seed, so a seed still gives one fingerprint (see ARCHITECTURE.md,
/// "Reproducible crypto").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSecurity {
    /// Who vouches for identities.
    pub trust: TrustKind,
    /// How long the anchor's certificates stay valid from the start of the run. Default:
    /// for the whole run.
    #[serde(default, with = "serde_duration::option")]
    pub certificate_lifetime: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustKind {
    /// One anchor key certifies every node's (id, key). The only kind the simulator
    /// offers: its node ids are dense (0..n), and an allowlist makes ids hashes of keys.
    Anchor,
}

/// Always-on checkers and measurement windows.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Checks {
    /// How often the loop checker follows next hops.
    #[serde(with = "serde_duration")]
    pub loop_interval: Duration,
    /// Destinations sampled per loop check.
    pub loop_destinations: u32,
    /// How often route stretch is sampled.
    #[serde(with = "serde_duration")]
    pub stretch_interval: Duration,
    pub stretch_pairs: u32,
    /// A neighbour declared down within this long of a real change of its node or link is a
    /// late true detection, not a false positive.
    #[serde(with = "serde_duration")]
    pub false_positive_grace: Duration,
    /// How long after injection recovery is looked for before a fault counts as unrecovered.
    #[serde(with = "serde_duration")]
    pub recovery_window: Duration,
}

impl Default for Checks {
    fn default() -> Self {
        Checks {
            loop_interval: Duration::from_millis(100),
            loop_destinations: 16,
            stretch_interval: Duration::from_secs(1),
            stretch_pairs: 64,
            false_positive_grace: Duration::from_secs(1),
            recovery_window: Duration::from_secs(10),
        }
    }
}

/// Which nodes a fault hits. Random choices come from the run seed.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeTarget {
    Nodes(Vec<Spanned<u32>>),
    Random(u32),
    Percent(Percent),
    HighestDegree(u32),
    ArticulationPoints(u32),
}

/// Which links a fault hits.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkTarget {
    Links(Vec<[Spanned<u32>; 2]>),
    Random(u32),
    Percent(Percent),
    /// Links whose loss disconnects the graph.
    Bridges(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateMode {
    Keep,
    Lose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitSide {
    /// Each node joins one of two halves at random.
    Random,
    /// A connected region holding `fraction` (default 30%) of the nodes is cut off.
    Minority,
    /// A connected region holding `fraction` (default 70%) of the nodes is cut off.
    Majority,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RestartFile {
    target: NodeTarget,
    #[serde(default = "default_state_mode")]
    state: StateMode,
}

fn default_state_mode() -> StateMode {
    StateMode::Lose
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlapFile {
    target: LinkTarget,
    #[serde(with = "serde_duration")]
    period: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartitionFile {
    #[serde(default)]
    groups: Option<Vec<Vec<Spanned<u32>>>>,
    #[serde(default)]
    split: Option<SplitSide>,
    #[serde(default)]
    fraction: Option<Percent>,
}

/// Link impairments; each field left out is unchanged.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Degrade {
    pub target: LinkTarget,
    /// Added to the link's latency.
    #[serde(default, with = "serde_duration::option")]
    pub latency: Option<Duration>,
    #[serde(default, with = "serde_duration::option")]
    pub jitter: Option<Duration>,
    #[serde(default)]
    pub loss: Option<Percent>,
    #[serde(default)]
    pub bandwidth: Option<Bandwidth>,
    #[serde(default)]
    pub duplicate: Option<Percent>,
    /// Share of packets that skip the queue order (delivered early).
    #[serde(default)]
    pub reorder: Option<Percent>,
    /// Share of packets with one byte flipped.
    #[serde(default)]
    pub corrupt: Option<Percent>,
}

impl Degrade {
    fn is_noop(&self) -> bool {
        self.latency.is_none()
            && self.jitter.is_none()
            && self.loss.is_none()
            && self.bandwidth.is_none()
            && self.duplicate.is_none()
            && self.reorder.is_none()
            && self.corrupt.is_none()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockFile {
    target: NodeTarget,
    #[serde(default)]
    skew: Option<SignedDuration>,
    #[serde(default)]
    drift: Option<Ppm>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct GreyHoleFile {
    target: NodeTarget,
    drop: Percent,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayFile {
    target: LinkTarget,
    #[serde(default = "default_replay_delay", with = "serde_duration")]
    delay: Duration,
}

fn default_replay_delay() -> Duration {
    Duration::from_secs(1)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImpersonateFile {
    target: NodeTarget,
    victim: Spanned<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FloodFile {
    target: NodeTarget,
    rate_per_s: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultFile {
    #[serde(default)]
    name: Option<String>,
    #[serde(with = "serde_duration")]
    at: Duration,
    #[serde(default, with = "serde_duration::option")]
    every: Option<Duration>,
    #[serde(default)]
    count: Option<u32>,
    #[serde(default, with = "serde_duration::option")]
    duration: Option<Duration>,
    #[serde(default)]
    crash: Option<NodeTarget>,
    #[serde(default)]
    restart: Option<RestartFile>,
    #[serde(default)]
    pause: Option<NodeTarget>,
    #[serde(default)]
    link_down: Option<LinkTarget>,
    #[serde(default)]
    link_flap: Option<FlapFile>,
    #[serde(default)]
    partition: Option<PartitionFile>,
    #[serde(default)]
    degrade: Option<Degrade>,
    #[serde(default)]
    clock: Option<ClockFile>,
    #[serde(default)]
    blackhole: Option<NodeTarget>,
    #[serde(default)]
    grey_hole: Option<GreyHoleFile>,
    #[serde(default)]
    replay: Option<ReplayFile>,
    #[serde(default)]
    impersonate: Option<ImpersonateFile>,
    #[serde(default)]
    malformed_flood: Option<FloodFile>,
}

/// One fault entry: what, to whom, when, for how long.
#[derive(Debug, Clone)]
pub struct Fault {
    pub name: String,
    pub at: Duration,
    /// Repeat period; `None` for a single injection.
    pub every: Option<Duration>,
    /// Injections in all (1 unless `every` is set; then until the run ends unless given).
    pub count: Option<u32>,
    /// Time until heal; `None` means the fault is permanent.
    pub duration: Option<Duration>,
    pub kind: FaultKind,
    pub location: Location,
}

#[derive(Debug, Clone)]
pub enum FaultKind {
    /// The process dies; on heal it starts again without state.
    Crash(NodeTarget),
    /// The process stops for `duration` (zero if absent) and starts again.
    Restart { target: NodeTarget, state: StateMode },
    /// The process freezes (SIGSTOP): packets queue, timers stall; on heal it resumes.
    Pause(NodeTarget),
    LinkDown(LinkTarget),
    /// Down for half of each `period`, up for the other half, until healed.
    LinkFlap { target: LinkTarget, period: Duration },
    Partition(Partition),
    Degrade(Degrade),
    /// The node's clock steps by `skew_ns` and runs `drift_ppm` fast (negative: slow).
    /// Healing stops the drift; the step stays, as a monotonic clock never steps back. A
    /// negative step is a clock that stands still until real time catches up.
    Clock { target: NodeTarget, skew_ns: i64, drift_ppm: i32 },
    /// Byzantine: the nodes advertise every destination at one hop, reachable or not, and
    /// drop what they are given to forward. Healing makes them honest again.
    Blackhole(NodeTarget),
    /// Byzantine: the nodes drop this share of what they are given to forward.
    GreyHole { target: NodeTarget, drop: Percent },
    /// An attacker on the links captures every frame crossing them and sends each again
    /// `delay` later, from the address it was captured from.
    Replay { target: LinkTarget, delay: Duration },
    /// The nodes restart with `victim`'s certificate (public) but their own key, which is
    /// all an attacker without the victim's key can present. Healing restarts them as
    /// themselves.
    Impersonate { target: NodeTarget, victim: Spanned<u32> },
    /// The nodes send `rate_per_s` malformed frames per second on every interface.
    MalformedFlood { target: NodeTarget, rate_per_s: u32 },
}

/// Sizes of a malformed flood's random frames, in the simulator and live alike: from shorter
/// than a header to a typical update.
pub const FLOOD_FRAME_LEN: std::ops::RangeInclusive<usize> = 8..=256;
/// The fastest malformed flood, per interface: a bound on the work a fault asks of a driver.
pub const FLOOD_RATE_PER_S_MAX: u32 = 100_000;

impl FaultKind {
    /// The YAML key of this kind, used as a label in tables and files.
    pub fn label(&self) -> &'static str {
        match self {
            FaultKind::Crash(_) => "crash",
            FaultKind::Restart { .. } => "restart",
            FaultKind::Pause(_) => "pause",
            FaultKind::LinkDown(_) => "link_down",
            FaultKind::LinkFlap { .. } => "link_flap",
            FaultKind::Partition(_) => "partition",
            FaultKind::Degrade(_) => "degrade",
            FaultKind::Clock { .. } => "clock",
            FaultKind::Blackhole(_) => "blackhole",
            FaultKind::GreyHole { .. } => "grey_hole",
            FaultKind::Replay { .. } => "replay",
            FaultKind::Impersonate { .. } => "impersonate",
            FaultKind::MalformedFlood { .. } => "malformed_flood",
        }
    }

    /// Whether the fault is a node (or attacker) misbehaving, which the mesh is expected to
    /// detect and isolate; these need link security.
    pub fn is_byzantine(&self) -> bool {
        matches!(
            self,
            FaultKind::Blackhole(_)
                | FaultKind::GreyHole { .. }
                | FaultKind::Replay { .. }
                | FaultKind::Impersonate { .. }
                | FaultKind::MalformedFlood { .. }
        )
    }

    /// Whether the fault is a failure the mesh is expected to detect and repair. A clock
    /// fault is not: what it can cause is false alarms, counted as false positives, so it is
    /// left out of the MTTD/MTTR/steady-state aggregates.
    pub fn is_failure(&self) -> bool {
        !matches!(self, FaultKind::Clock { .. })
    }

    /// Whether the fault acts on nodes (detected by neighbours suspecting them) rather than
    /// on links (detected by route changes around them).
    pub fn is_node_fault(&self) -> bool {
        matches!(
            self,
            FaultKind::Crash(_)
                | FaultKind::Restart { .. }
                | FaultKind::Pause(_)
                | FaultKind::Clock { .. }
                | FaultKind::Blackhole(_)
                | FaultKind::GreyHole { .. }
                | FaultKind::Impersonate { .. }
                | FaultKind::MalformedFlood { .. }
        )
    }
}

#[derive(Debug, Clone)]
pub enum Partition {
    /// Explicit groups; nodes in no group form one more group.
    Groups(Vec<Vec<Spanned<u32>>>),
    Split { side: SplitSide, fraction: Percent },
}

/// Why a scenario was refused. The message is complete: file, position, field, expectation.
#[derive(Debug, Clone, Error)]
pub enum ScenarioError {
    #[error("{0}")]
    Syntax(String),
    #[error("{0}")]
    Invalid(String),
    #[error(
        "{0}: the file is empty; a scenario needs at least `name`, `duration` and `topology` \
         (see scenarios/README.md)"
    )]
    Empty(String),
}

impl Origin {
    /// An invalid `protocol:` section (of a scenario or of a live node's config): points at
    /// the offending key if the file sets it, at the section otherwise.
    pub fn protocol_error(&self, section: Location, e: &crate::config::ConfigError) -> ScenarioError {
        let key = e.field.rsplit('.').next().unwrap_or(e.field);
        match find_key(&self.text, (section.line() as usize).max(1), key) {
            Some((line, column)) => render_at(self, line, column, &e.to_string()),
            None => error_at(self, section, e.to_string()),
        }
    }
}

/// Formats an error at a location in the scenario text, in the same style as parse errors.
pub fn error_at(origin: &Origin, location: Location, message: impl Into<String>) -> ScenarioError {
    if location == Location::UNKNOWN {
        return ScenarioError::Invalid(format!("error: {}: {}", origin.name, message.into()));
    }
    render_at(origin, location.line() as usize, location.column() as usize, &message.into())
}

/// An error pointing at `line:column` (1-based), with the two lines before it for context.
fn render_at(origin: &Origin, line: usize, column: usize, message: &str) -> ScenarioError {
    let lines: Vec<&str> = origin.text.lines().collect();
    let width = line.to_string().len();
    let mut out = format!("error: line {line} column {column}: {message}\n{:width$}--> {}:{line}:{column}\n", "", origin.name);
    out.push_str(&format!("{:width$} |\n", ""));
    for n in line.saturating_sub(2).max(1)..=line.min(lines.len()) {
        out.push_str(&format!("{n:>width$} | {}\n", lines[n - 1]));
    }
    out.push_str(&format!("{:width$} | {}^ {message}", "", " ".repeat(column.saturating_sub(1))));
    ScenarioError::Invalid(out)
}

/// Where `key:` is first written at or after line `from` (1-based), if anywhere: lets a
/// check on a value that serde did not locate still point at its line.
fn find_key(text: &str, from: usize, key: &str) -> Option<(usize, usize)> {
    text.lines().enumerate().skip(from.saturating_sub(1)).find_map(|(i, l)| {
        let col = l.find(&format!("{key}:"))?;
        let before = &l[..col];
        before.chars().all(|c| c == ' ' || c == '-' || c == '{' || c == ',').then_some((i + 1, col + 1))
    })
}

impl Scenario {
    /// Parses and validates scenario text. `name` is how errors refer to it (its path).
    pub fn parse(text: &str, name: &str) -> Result<Scenario, ScenarioError> {
        let origin = Origin { name: name.to_string(), text: text.to_string() };
        let meaningful = text.lines().any(|l| {
            let l = l.trim();
            !l.is_empty() && !l.starts_with('#') && l != "---" && l != "..."
        });
        if !meaningful {
            return Err(ScenarioError::Empty(name.to_string()));
        }
        let options = serde_saphyr::options! {
            budget: serde_saphyr::budget! { max_depth: 32, max_nodes: 200_000, max_aliases: 1_000 },
        };
        let file: ScenarioFile = serde_saphyr::from_str_with_options(text, options).map_err(|e| {
            ScenarioError::Syntax(e.render_with_options(serde_saphyr::render_options! { source_name: Some(name) }))
        })?;
        Scenario::from_file(file, origin)
    }

    fn from_file(f: ScenarioFile, origin: Origin) -> Result<Scenario, ScenarioError> {
        let at = |loc: Location, msg: String| error_at(&origin, loc, msg);
        if f.name.trim().is_empty() {
            return Err(at(Location::UNKNOWN, "name: must not be empty".into()));
        }
        if !(1..=1_000_000).contains(&f.seeds.value) {
            return Err(at(f.seeds.referenced, format!("seeds: is {}, expected 1 to 1000000", f.seeds.value)));
        }
        if f.duration.is_zero() {
            return Err(at(Location::UNKNOWN, "duration: must be more than 0s".into()));
        }
        if f.warmup >= f.duration {
            return Err(at(
                Location::UNKNOWN,
                format!(
                    "warmup: {} is not shorter than duration {}; nothing would be measured",
                    crate::time::DisplayDuration(f.warmup),
                    crate::time::DisplayDuration(f.duration)
                ),
            ));
        }
        if let Err(e) = f.protocol.value.validate() {
            return Err(origin.protocol_error(f.protocol.referenced, &e));
        }
        if f.workload.probe_interval < INTERVAL_MIN {
            return Err(at(
                Location::UNKNOWN,
                format!(
                    "workload.probe_interval: is {}, expected at least 1ms (every pair sends a probe each interval)",
                    crate::time::DisplayDuration(f.workload.probe_interval)
                ),
            ));
        }
        if f.workload.probe_pairs > PROBE_PAIRS_MAX {
            return Err(at(
                Location::UNKNOWN,
                format!("workload.probe_pairs: is {}, expected at most {PROBE_PAIRS_MAX}", f.workload.probe_pairs),
            ));
        }
        if f.checks.loop_interval < INTERVAL_MIN || f.checks.stretch_interval < INTERVAL_MIN {
            return Err(at(Location::UNKNOWN, "checks: loop_interval and stretch_interval must be at least 1ms".into()));
        }
        if f.checks.loop_destinations > LOOP_DESTINATIONS_MAX || f.checks.stretch_pairs > STRETCH_PAIRS_MAX {
            return Err(at(
                Location::UNKNOWN,
                format!(
                    "checks: loop_destinations is {} and stretch_pairs {}, expected at most {LOOP_DESTINATIONS_MAX} and \
                     {STRETCH_PAIRS_MAX} (each check follows every node's next hop to each of them)",
                    f.checks.loop_destinations, f.checks.stretch_pairs
                ),
            ));
        }
        if f.steady_state.window.is_zero() {
            return Err(at(Location::UNKNOWN, "steady_state.window: must be more than 0s".into()));
        }
        if let Some(areas) = &f.areas {
            if areas.value.size < 2 {
                return Err(at(areas.referenced, format!("areas.size: is {}, expected at least 2 nodes per area", areas.value.size)));
            }
            if f.protocol.value.area_starts.is_some() {
                return Err(at(
                    areas.referenced,
                    "areas: the simulator plans areas itself; remove protocol.area_starts or this".into(),
                ));
            }
        }
        check_topology(&f.topology, &origin)?;
        let mut faults = Vec::with_capacity(f.faults.len());
        for (i, spanned) in f.faults.into_iter().enumerate() {
            let location = spanned.referenced;
            let fault = convert_fault(i, spanned, f.warmup, f.duration, &origin)?;
            if fault.kind.is_byzantine() && f.security.is_none() {
                return Err(at(
                    location,
                    format!(
                        "faults[{i}].{}: a Byzantine fault needs `security: {{ trust: anchor }}`; without link \
                         security no frame names its sender and nodes run no Byzantine detection",
                        fault.kind.label()
                    ),
                ));
            }
            faults.push(fault);
        }
        Ok(Scenario {
            name: f.name,
            description: f.description,
            seed: f.seed,
            seeds: f.seeds.value,
            duration: f.duration,
            warmup: f.warmup,
            topology: f.topology,
            links: f.links,
            protocol: f.protocol.value,
            areas: f.areas.map(|a| a.value),
            security: f.security,
            workload: f.workload,
            steady_state: f.steady_state,
            faults,
            assertions: f.assertions,
            checks: f.checks,
            origin,
        })
    }

    /// Checks every explicit node id against a topology of `nodes` nodes (known only once
    /// the topology is built or loaded).
    pub fn check_node_ids(&self, nodes: u32) -> Result<(), ScenarioError> {
        let check = |id: &Spanned<u32>, field: String| {
            if id.value < nodes {
                Ok(())
            } else {
                Err(error_at(
                    &self.origin,
                    id.referenced,
                    format!(
                        "{field}: unknown node id {}; the topology has nodes 0 to {} (`x0 topo` lists them)",
                        id.value,
                        nodes.saturating_sub(1)
                    ),
                ))
            }
        };
        let check_nodes = |t: &NodeTarget, field: &str| -> Result<(), ScenarioError> {
            if let NodeTarget::Nodes(ids) = t {
                for (j, id) in ids.iter().enumerate() {
                    check(id, format!("{field}.nodes[{j}]"))?;
                }
            }
            Ok(())
        };
        let check_links = |t: &LinkTarget, field: &str| -> Result<(), ScenarioError> {
            if let LinkTarget::Links(pairs) = t {
                for (j, [a, b]) in pairs.iter().enumerate() {
                    check(a, format!("{field}.links[{j}][0]"))?;
                    check(b, format!("{field}.links[{j}][1]"))?;
                }
            }
            Ok(())
        };
        for (i, fault) in self.faults.iter().enumerate() {
            let field = format!("faults[{i}].{}", fault.kind.label());
            match &fault.kind {
                FaultKind::Crash(t) | FaultKind::Pause(t) | FaultKind::Blackhole(t) => check_nodes(t, &field)?,
                FaultKind::Restart { target, .. }
                | FaultKind::Clock { target, .. }
                | FaultKind::GreyHole { target, .. }
                | FaultKind::MalformedFlood { target, .. } => check_nodes(target, &format!("{field}.target"))?,
                FaultKind::Impersonate { target, victim } => {
                    check_nodes(target, &format!("{field}.target"))?;
                    check(victim, format!("{field}.victim"))?;
                }
                FaultKind::LinkDown(t) => check_links(t, &field)?,
                FaultKind::LinkFlap { target, .. }
                | FaultKind::Degrade(Degrade { target, .. })
                | FaultKind::Replay { target, .. } => check_links(target, &format!("{field}.target"))?,
                FaultKind::Partition(Partition::Groups(groups)) => {
                    for (g, group) in groups.iter().enumerate() {
                        for (j, id) in group.iter().enumerate() {
                            check(id, format!("{field}.groups[{g}][{j}]"))?;
                        }
                    }
                }
                FaultKind::Partition(Partition::Split { .. }) => {}
            }
        }
        Ok(())
    }

    /// Every seed this scenario runs, in order.
    pub fn seed_list(&self) -> Vec<u64> {
        (0..u64::from(self.seeds)).map(|i| self.seed.wrapping_add(i)).collect()
    }
}

/// The most nodes a generated topology may have. scale-100k is 100,000; a node costs the
/// simulator tens of kilobytes, so this is already past any machine's memory, and it stops a
/// typo from asking for the impossible.
const NODES_MAX: u32 = 10_000_000;
/// The most links a generated topology may have: at a few hundred bytes each in the
/// simulator (the link, both interfaces, both neighbour entries), about 8 GB.
const LINKS_MAX: u64 = 20_000_000;
/// The shortest probe, loop-check and stretch-check interval: each is an event for the
/// whole mesh, and below a millisecond they would outnumber everything the mesh does (with
/// a `1ns` probe interval a 9-node, 8-s run had not finished after 30 s, at 2.2 GB).
const INTERVAL_MIN: Duration = Duration::from_millis(1);
/// The most destinations one loop check follows from every node, and the most pairs one
/// stretch check samples: they are drawn and held for every check (4 × 10^9 of them, 16 GB
/// to draw for the first check, left a 9-node run silent for over a minute).
const LOOP_DESTINATIONS_MAX: u32 = 10_000;
const STRETCH_PAIRS_MAX: u32 = 100_000;
/// The most injections one fault entry may make: each is a fault instance to simulate,
/// evaluate and report (a row of faults.parquet).
const INJECTIONS_MAX: u32 = 100_000;
/// The most probed pairs: each sends a probe every `probe_interval`, and the pair list is
/// drawn before the run starts.
const PROBE_PAIRS_MAX: u32 = 1_000_000;

/// About how many links a generated topology has, before it is built (`None`: a file).
fn expected_links(t: &TopologySpec) -> Option<f64> {
    let pairs = |n: u32| f64::from(n) * (f64::from(n) - 1.0) / 2.0;
    Some(match t {
        TopologySpec::Ring { nodes } | TopologySpec::Line { nodes } => f64::from(*nodes),
        TopologySpec::Grid { rows, cols } => 2.0 * f64::from(*rows) * f64::from(*cols),
        TopologySpec::RandomGeometric { nodes, radius, degree, .. } => match (radius, degree) {
            // A disk of radius r covers at most pi r^2 of the unit square.
            (Some(r), _) => pairs(*nodes) * (std::f64::consts::PI * r * r).min(1.0),
            (None, d) => f64::from(*nodes) * d.unwrap_or(0.0) / 2.0,
        },
        TopologySpec::ErdosRenyi { nodes, p, degree, .. } => match (p, degree) {
            (Some(p), _) => pairs(*nodes) * p,
            (None, d) => f64::from(*nodes) * d.unwrap_or(0.0) / 2.0,
        },
        TopologySpec::BarabasiAlbert { nodes, m, .. } => f64::from(*nodes) * f64::from(*m),
        TopologySpec::File { .. } => return None,
    })
}

fn check_topology(t: &TopologySpec, origin: &Origin) -> Result<(), ScenarioError> {
    let location = match t {
        TopologySpec::File { path, .. } => path.referenced,
        _ => Location::UNKNOWN,
    };
    t.check().map_err(|msg| error_at(origin, location, format!("topology: {msg}")))
}

impl TopologySpec {
    /// Checks a generator's parameters and the limits on its size (nodes, and links as
    /// estimated before building); the error names the field and what it should be. A
    /// file's contents are checked when it is read. Scenarios are checked on load, and the
    /// simulator's `Topology::from_spec` checks again, so that a spec from anywhere else
    /// (`x0 topo`) is refused before anything is built.
    pub fn check(&self) -> Result<(), String> {
        let min_nodes = |n: u32, min: u32, kind: &str| {
            if n < min || n > NODES_MAX { Err(format!("{kind}.nodes is {n}, expected {min} to {NODES_MAX}")) } else { Ok(()) }
        };
        let fraction = |v: Option<f64>, field: &str, max: f64| match v {
            Some(x) if !(x.is_finite() && x > 0.0 && x <= max) => {
                Err(format!("{field} is {x}, expected a number above 0 and at most {max}"))
            }
            _ => Ok(()),
        };
        // Both random generators take exactly one of a shape parameter (its name, value and
        // largest value) or a mean degree.
        let random = |kind: &str, nodes: u32, (name, value, max): (&str, Option<f64>, f64), degree: Option<f64>| {
            min_nodes(nodes, 2, kind)?;
            if value.is_some() == degree.is_some() {
                return Err(format!("{kind} needs exactly one of `{name}` or `degree`"));
            }
            fraction(value, &format!("{kind}.{name}"), max)?;
            fraction(degree, &format!("{kind}.degree"), f64::from(nodes))
        };
        match self {
            TopologySpec::Ring { nodes } => min_nodes(*nodes, 3, "ring")?,
            TopologySpec::Line { nodes } => min_nodes(*nodes, 2, "line")?,
            TopologySpec::Grid { rows, cols } => {
                let nodes = u64::from(*rows) * u64::from(*cols);
                if !(2..=u64::from(NODES_MAX)).contains(&nodes) {
                    return Err(format!("grid is {rows}x{cols}, {nodes} nodes, expected 2 to {NODES_MAX}"));
                }
            }
            TopologySpec::RandomGeometric { nodes, radius, degree, .. } => {
                random("random_geometric", *nodes, ("radius", *radius, 1.5), *degree)?;
            }
            TopologySpec::ErdosRenyi { nodes, p, degree, .. } => random("erdos_renyi", *nodes, ("p", *p, 1.0), *degree)?,
            TopologySpec::BarabasiAlbert { nodes, m, .. } => {
                min_nodes(*nodes, 2, "barabasi_albert")?;
                if *m == 0 || *m >= *nodes {
                    return Err(format!("barabasi_albert.m is {m}, expected 1 to nodes - 1"));
                }
            }
            TopologySpec::File { path, .. } => {
                if path.value.trim().is_empty() {
                    return Err("file.path: must not be empty".into());
                }
            }
        }
        match expected_links(self) {
            Some(links) if links > LINKS_MAX as f64 => Err(format!(
                "makes about {links:.0} links, more than the {LINKS_MAX} a simulation may hold: lower its nodes or its degree"
            )),
            _ => Ok(()),
        }
    }
}

fn convert_fault(
    i: usize,
    spanned: Spanned<FaultFile>,
    warmup: Duration,
    run: Duration,
    origin: &Origin,
) -> Result<Fault, ScenarioError> {
    let loc = spanned.referenced;
    let f = spanned.value;
    let bad = |msg: String| Err(error_at(origin, loc, format!("faults[{i}]: {msg}")));
    let mut kinds: Vec<(&str, FaultKind)> = Vec::new();
    if let Some(t) = f.crash {
        kinds.push(("crash", FaultKind::Crash(t)));
    }
    if let Some(r) = f.restart {
        kinds.push(("restart", FaultKind::Restart { target: r.target, state: r.state }));
    }
    if let Some(t) = f.pause {
        kinds.push(("pause", FaultKind::Pause(t)));
    }
    if let Some(t) = f.link_down {
        kinds.push(("link_down", FaultKind::LinkDown(t)));
    }
    if let Some(fl) = f.link_flap {
        if fl.period.is_zero() {
            return bad("link_flap.period: must be more than 0s".into());
        }
        kinds.push(("link_flap", FaultKind::LinkFlap { target: fl.target, period: fl.period }));
    }
    if let Some(p) = f.partition {
        let part = match (p.groups, p.split) {
            (Some(groups), None) => {
                if p.fraction.is_some() {
                    return bad("partition.fraction: only goes with `split`, not with `groups`".into());
                }
                if groups.iter().all(Vec::is_empty) {
                    return bad("partition.groups: give at least one non-empty group".into());
                }
                Partition::Groups(groups)
            }
            (None, Some(side)) => {
                let fraction = p.fraction.unwrap_or(match side {
                    SplitSide::Random => Percent::from_ppm(500_000),
                    SplitSide::Minority => Percent::from_ppm(300_000),
                    SplitSide::Majority => Percent::from_ppm(700_000),
                });
                let ok = match side {
                    SplitSide::Random => fraction > Percent::ZERO && fraction < Percent::HUNDRED,
                    SplitSide::Minority => fraction > Percent::ZERO && fraction.ppm() < 500_000,
                    SplitSide::Majority => fraction.ppm() > 500_000 && fraction < Percent::HUNDRED,
                };
                if !ok {
                    return bad(format!(
                        "partition.fraction: {fraction} does not fit `split: {}`; minority is below 50%, \
                         majority above 50%, random between 0% and 100%",
                        match side {
                            SplitSide::Random => "random",
                            SplitSide::Minority => "minority",
                            SplitSide::Majority => "majority",
                        }
                    ));
                }
                Partition::Split { side, fraction }
            }
            _ => return bad("partition: give exactly one of `groups` or `split`".into()),
        };
        kinds.push(("partition", FaultKind::Partition(part)));
    }
    if let Some(d) = f.degrade {
        if d.is_noop() {
            return bad("degrade: give at least one of latency, jitter, loss, bandwidth, duplicate, reorder, corrupt".into());
        }
        kinds.push(("degrade", FaultKind::Degrade(d)));
    }
    if let Some(c) = f.clock {
        if c.skew.is_none() && c.drift.is_none() {
            return bad("clock: give `skew`, `drift` or both".into());
        }
        kinds.push((
            "clock",
            FaultKind::Clock { target: c.target, skew_ns: c.skew.map_or(0, |s| s.0), drift_ppm: c.drift.map_or(0, |d| d.0) },
        ));
    }
    if let Some(t) = f.blackhole {
        kinds.push(("blackhole", FaultKind::Blackhole(t)));
    }
    if let Some(g) = f.grey_hole {
        if g.drop == Percent::ZERO {
            return bad("grey_hole.drop: must be more than 0%".into());
        }
        kinds.push(("grey_hole", FaultKind::GreyHole { target: g.target, drop: g.drop }));
    }
    if let Some(r) = f.replay {
        if r.delay.is_zero() {
            return bad("replay.delay: must be more than 0s".into());
        }
        kinds.push(("replay", FaultKind::Replay { target: r.target, delay: r.delay }));
    }
    if let Some(i) = f.impersonate {
        kinds.push(("impersonate", FaultKind::Impersonate { target: i.target, victim: i.victim }));
    }
    if let Some(m) = f.malformed_flood {
        if !(1..=FLOOD_RATE_PER_S_MAX).contains(&m.rate_per_s) {
            return bad(format!("malformed_flood.rate_per_s: is {}, expected 1 to {FLOOD_RATE_PER_S_MAX}", m.rate_per_s));
        }
        kinds.push(("malformed_flood", FaultKind::MalformedFlood { target: m.target, rate_per_s: m.rate_per_s }));
    }
    let kind = match kinds.len() {
        1 => kinds.pop().expect("one element").1,
        0 => {
            return bad(
                "no fault kind; add one of crash, restart, pause, link_down, link_flap, partition, degrade, clock, \
                 blackhole, grey_hole, replay, impersonate, malformed_flood"
                    .into(),
            );
        }
        _ => {
            let names: Vec<&str> = kinds.iter().map(|(n, _)| *n).collect();
            return bad(format!("one fault per entry, found {}; split them into separate entries", names.join(", ")));
        }
    };
    if f.at < warmup {
        return bad(format!(
            "at: {} is inside the warmup ({}); inject after the mesh has converged",
            crate::time::DisplayDuration(f.at),
            crate::time::DisplayDuration(warmup)
        ));
    }
    if f.at >= run {
        return bad(format!(
            "at: {} is not before the end of the run ({})",
            crate::time::DisplayDuration(f.at),
            crate::time::DisplayDuration(run)
        ));
    }
    if let Some(e) = f.every
        && e.is_zero()
    {
        return bad("every: must be more than 0s".into());
    }
    if f.count == Some(0) {
        return bad("count: must be at least 1".into());
    }
    if f.count.is_some_and(|c| c > 1) && f.every.is_none() {
        return bad("count: more than one injection needs `every`".into());
    }
    if let (Some(d), Some(e)) = (f.duration, f.every)
        && d >= e
    {
        return bad("duration: must be shorter than `every`, or injections would overlap their own heal".into());
    }
    if matches!(kind, FaultKind::LinkFlap { .. }) && f.duration.is_none() {
        return bad("link_flap needs a `duration`: how long the link flaps".into());
    }
    if let Some(e) = f.every {
        // Injections at `at + k * every` before the end of the run, `count` at most.
        let fit = (run - f.at).saturating_sub(Duration::from_nanos(1)).as_nanos() / e.as_nanos() + 1;
        let injections = fit.min(f.count.map_or(u128::MAX, u128::from));
        if injections > u128::from(INJECTIONS_MAX) {
            return bad(format!(
                "every: {} from {} to the end of the run ({}) makes {injections} injections, more than the \
                 {INJECTIONS_MAX} a fault entry may make: a longer `every`, or a `count`",
                crate::time::DisplayDuration(e),
                crate::time::DisplayDuration(f.at),
                crate::time::DisplayDuration(run)
            ));
        }
    }
    let name = f.name.unwrap_or_else(|| format!("{}-{i}", kind.label()));
    Ok(Fault { name, at: f.at, every: f.every, count: f.count, duration: f.duration, kind, location: loc })
}

impl Fault {
    /// When an injection at `t_inject` heals, if it does.
    pub fn heal_time(&self, t_inject: Duration) -> Option<Duration> {
        match (&self.kind, self.duration) {
            (_, Some(d)) => Some(t_inject + d),
            // A restart without a downtime stops and starts in the same instant.
            (FaultKind::Restart { .. }, None) => Some(t_inject),
            _ => None,
        }
    }

    /// Injection times of this fault within a run of length `run`.
    pub fn injection_times(&self, run: Duration) -> Vec<Duration> {
        let mut times = vec![self.at];
        if let Some(every) = self.every {
            let max = self.count.unwrap_or(u32::MAX) as usize;
            let mut t = self.at + every;
            while t < run && times.len() < max {
                times.push(t);
                t += every;
            }
        }
        times
    }
}
