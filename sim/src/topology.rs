//! Topologies as petgraph graphs: generators, file loaders and DOT export.
//!
//! Nodes are numbered densely `0..n` (generation order, or file order for files); that
//! number is the `NodeId` in scenarios, events and results. Each edge carries an optional
//! latency and per-direction delivery probability that override the scenario's link
//! defaults (GraphML coordinates give latency, meshnet-lab `tq` gives delivery).

use petgraph::graph::{EdgeIndex, NodeIndex, UnGraph};
use petgraph::visit::EdgeRef;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rustc_hash::FxHashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;
use x0tta6bl4::area::AreaPlan;
use x0tta6bl4::ids::NodeId;
use x0tta6bl4::scenario::{FileFormat, TopologySpec};
use x0tta6bl4::units::Percent;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeInfo {
    pub name: String,
    /// Coordinates: unit-square (x, y) for generated meshes, (latitude, longitude) for files.
    pub pos: Option<(f64, f64)>,
}

// `PartialOrd` only because petgraph's articulation-point search asks for it.
#[derive(Clone, Debug, Default, PartialEq, PartialOrd)]
pub struct LinkInfo {
    pub latency: Option<Duration>,
    /// Delivery probability from the edge's first endpoint to its second, and back.
    pub delivery: Option<[Percent; 2]>,
}

#[derive(Clone, Debug)]
pub struct Topology {
    pub graph: UnGraph<NodeInfo, LinkInfo>,
    /// What it is, for tables and logs: "grid 7x7", "Abilene.graphml".
    pub description: String,
    /// The routing areas, when the scenario asks for them (see `Topology::into_areas`).
    pub areas: Option<AreaPlan>,
}

#[derive(Debug, Error)]
pub enum TopologyError {
    #[error("{path}: cannot read the topology file: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: not valid GraphML: {detail}")]
    GraphMl { path: PathBuf, detail: String },
    #[error("{path}: not valid meshnet-lab JSON: {detail}")]
    Meshnet { path: PathBuf, detail: String },
    #[error("{path}:{line}: {detail}")]
    EdgeList { path: PathBuf, line: usize, detail: String },
    #[error("{path}: the topology has {nodes} node(s) and {edges} link(s); a mesh needs at least 2 nodes and 1 link")]
    TooSmall { path: PathBuf, nodes: usize, edges: usize },
    #[error("topology: {0}")]
    Generate(String),
}

/// Great-circle propagation: about 5 microseconds per km of fibre.
const FIBRE_NS_PER_KM: f64 = 5_000.0;
/// No link is faster than this, even between co-located nodes: a packet still crosses a
/// switch. It also keeps the simulator's lookahead above zero.
const MIN_LATENCY: Duration = Duration::from_micros(10);

impl Topology {
    /// What every node of this topology runs: the scenario's protocol section plus this
    /// topology's area plan, if it has one. The simulator and `x0 live` both use it.
    pub fn node_protocol(&self, scenario: &x0tta6bl4::config::ProtocolConfig) -> x0tta6bl4::config::ProtocolConfig {
        let mut protocol = scenario.clone();
        if self.areas.is_some() {
            protocol.area_starts.clone_from(&self.areas);
        }
        protocol
    }

    pub fn node_count(&self) -> u32 {
        self.graph.node_count() as u32
    }

    pub fn edge_count(&self) -> usize {
        self.graph.edge_count()
    }

    /// Edges as (low id, high id) in edge-index order.
    pub fn edge_list(&self) -> Vec<(NodeId, NodeId)> {
        self.graph
            .edge_references()
            .map(|e| (NodeId(e.source().index() as u32), NodeId(e.target().index() as u32)))
            .collect()
    }

    pub fn mean_degree(&self) -> f64 {
        2.0 * self.edge_count() as f64 / f64::from(self.node_count().max(1))
    }

    /// Builds the topology a scenario describes, once [`TopologySpec::check`] passes. `base`
    /// is the scenario's directory (file paths are relative to it); `seed` draws random
    /// graphs unless the spec fixes one.
    pub fn from_spec(spec: &TopologySpec, base: &Path, seed: u64) -> Result<Topology, TopologyError> {
        spec.check().map_err(TopologyError::Generate)?;
        let rng = |fixed: Option<u64>| crate::seed::stream(fixed.unwrap_or(seed), "topology", 0, 0);
        match spec {
            TopologySpec::Ring { nodes } => Ok(ring(*nodes)),
            TopologySpec::Line { nodes } => Ok(line(*nodes)),
            TopologySpec::Grid { rows, cols } => Ok(grid(*rows, *cols)),
            TopologySpec::RandomGeometric { nodes, radius, degree, seed } => {
                let n = *nodes;
                let r = radius.unwrap_or_else(|| {
                    (degree.expect("validated: radius or degree") / (std::f64::consts::PI * f64::from(n - 1))).sqrt()
                });
                Ok(random_geometric(n, r, &mut rng(*seed)))
            }
            TopologySpec::ErdosRenyi { nodes, p, degree, seed } => {
                let p = p.unwrap_or_else(|| degree.expect("validated: p or degree") / f64::from(*nodes - 1));
                Ok(erdos_renyi(*nodes, p.min(1.0), &mut rng(*seed)))
            }
            TopologySpec::BarabasiAlbert { nodes, m, seed } => Ok(barabasi_albert(*nodes, *m, &mut rng(*seed))),
            TopologySpec::File { path, format, min_delivery, largest_component } => {
                let full = base.join(&path.value);
                let mut t = load_file(&full, *format)?;
                if let Some(min) = min_delivery {
                    t.drop_links_below(*min);
                }
                if *largest_component {
                    t = t.largest_component();
                }
                if t.node_count() < 2 || t.edge_count() == 0 {
                    return Err(TopologyError::TooSmall { path: full, nodes: t.graph.node_count(), edges: t.edge_count() });
                }
                Ok(t)
            }
        }
    }

    /// Removes links whose delivery probability is below `min` in either direction.
    fn drop_links_below(&mut self, min: Percent) {
        self.graph.retain_edges(|g, e| g[e].delivery.is_none_or(|[ab, ba]| ab >= min && ba >= min));
        let _ = write!(self.description, ", links below {min} delivery dropped");
    }

    /// The largest connected component, renumbered densely in the original order.
    fn largest_component(&self) -> Topology {
        let comps = components(&self.graph);
        let mut sizes = FxHashMap::default();
        for &c in &comps {
            *sizes.entry(c).or_insert(0usize) += 1;
        }
        let biggest = sizes.iter().max_by_key(|&(c, n)| (*n, std::cmp::Reverse(*c))).map_or(0, |(c, _)| *c);
        let mut keep = vec![None; comps.len()];
        let mut graph = UnGraph::default();
        for (i, &c) in comps.iter().enumerate() {
            if c == biggest {
                keep[i] = Some(graph.add_node(self.graph[NodeIndex::new(i)].clone()));
            }
        }
        for e in self.graph.edge_references() {
            if let (Some(a), Some(b)) = (keep[e.source().index()], keep[e.target().index()]) {
                graph.add_edge(a, b, e.weight().clone());
            }
        }
        Topology { graph, description: format!("{}, largest component", self.description), areas: None }
    }

    /// Graphviz DOT text: node labels are ids and names, edge labels latencies.
    pub fn to_dot(&self) -> String {
        let mut out = String::from("graph topology {\n  node [shape=circle, fontsize=10];\n");
        for n in self.graph.node_indices() {
            let info = &self.graph[n];
            let label = if info.name.is_empty() || info.name == n.index().to_string() {
                n.index().to_string()
            } else {
                format!("{}\\n{}", n.index(), info.name.replace('"', "'"))
            };
            let _ = writeln!(out, "  {} [label=\"{label}\"];", n.index());
        }
        for e in self.graph.edge_references() {
            let mut attrs = Vec::new();
            if let Some(l) = e.weight().latency {
                attrs.push(format!("label=\"{}\"", x0tta6bl4::time::DisplayDuration(l)));
            }
            if let Some([ab, ba]) = e.weight().delivery {
                attrs.push(format!("tooltip=\"delivery {ab} / {ba}\""));
            }
            let attrs = if attrs.is_empty() { String::new() } else { format!(" [{}]", attrs.join(", ")) };
            let _ = writeln!(out, "  {} -- {}{attrs};", e.source().index(), e.target().index());
        }
        out.push_str("}\n");
        out
    }
}

/// Connected-component label of every node.
pub fn components<N, E>(g: &UnGraph<N, E>) -> Vec<usize> {
    let mut uf = petgraph::unionfind::UnionFind::<usize>::new(g.node_count());
    for e in g.edge_references() {
        uf.union(e.source().index(), e.target().index());
    }
    (0..g.node_count()).map(|i| uf.find(i)).collect()
}

fn empty(n: u32, description: String) -> Topology {
    let mut graph = UnGraph::with_capacity(n as usize, n as usize * 3);
    for i in 0..n {
        graph.add_node(NodeInfo { name: i.to_string(), pos: None });
    }
    Topology { graph, description, areas: None }
}

fn link(t: &mut Topology, a: u32, b: u32) -> EdgeIndex {
    t.graph.add_edge(NodeIndex::new(a as usize), NodeIndex::new(b as usize), LinkInfo::default())
}

pub fn ring(n: u32) -> Topology {
    let mut t = empty(n, format!("ring of {n}"));
    for i in 0..n {
        link(&mut t, i, (i + 1) % n);
    }
    t
}

pub fn line(n: u32) -> Topology {
    let mut t = empty(n, format!("line of {n}"));
    for i in 1..n {
        link(&mut t, i - 1, i);
    }
    t
}

pub fn grid(rows: u32, cols: u32) -> Topology {
    let mut t = empty(rows * cols, format!("grid {rows}x{cols}"));
    for r in 0..rows {
        for c in 0..cols {
            let i = r * cols + c;
            if c + 1 < cols {
                link(&mut t, i, i + 1);
            }
            if r + 1 < rows {
                link(&mut t, i, i + cols);
            }
        }
    }
    t
}

/// A unit-disk graph in the unit square. Components left disconnected are joined by their
/// closest node pair, as a mesh operator would add a longer link, so every node is reachable
/// and the node count is what the scenario asked for.
pub fn random_geometric(n: u32, radius: f64, rng: &mut ChaCha8Rng) -> Topology {
    let mut t = empty(n, format!("random geometric, {n} nodes, radius {radius:.4}"));
    let pos: Vec<(f64, f64)> = (0..n).map(|_| (rng.random::<f64>(), rng.random::<f64>())).collect();
    for (i, p) in pos.iter().enumerate() {
        t.graph[NodeIndex::new(i)].pos = Some(*p);
    }
    // Bucket nodes in cells of side `radius` so only neighbouring cells are compared.
    let cells = ((1.0 / radius).floor() as usize).clamp(1, 4096);
    let cell_of = |p: (f64, f64)| {
        let cx = ((p.0 * cells as f64) as usize).min(cells - 1);
        let cy = ((p.1 * cells as f64) as usize).min(cells - 1);
        (cx, cy)
    };
    let mut buckets: Vec<Vec<u32>> = vec![Vec::new(); cells * cells];
    for (i, &p) in pos.iter().enumerate() {
        let (cx, cy) = cell_of(p);
        buckets[cy * cells + cx].push(i as u32);
    }
    let r2 = radius * radius;
    let d2 = |a: (f64, f64), b: (f64, f64)| (a.0 - b.0).powi(2) + (a.1 - b.1).powi(2);
    for (i, &p) in pos.iter().enumerate() {
        let (cx, cy) = cell_of(p);
        for y in cy.saturating_sub(1)..=(cy + 1).min(cells - 1) {
            for x in cx.saturating_sub(1)..=(cx + 1).min(cells - 1) {
                for &j in &buckets[y * cells + x] {
                    if (j as usize) > i && d2(p, pos[j as usize]) <= r2 {
                        link(&mut t, i as u32, j);
                    }
                }
            }
        }
    }
    join_components(&mut t, &pos);
    t
}

/// Adds, while the graph is disconnected, the shortest link from the component of node 0
/// to any other component (ties: lowest ids). Each node outside remembers its nearest node
/// inside, and only a newly joined component can change that, so a mesh of 100,000 nodes
/// with hundreds of stragglers joins in about `n × stragglers` steps, not that per link.
fn join_components(t: &mut Topology, pos: &[(f64, f64)]) {
    let comps = components(&t.graph);
    let main = comps[0];
    let d2 = |a: usize, b: usize| (pos[a].0 - pos[b].0).powi(2) + (pos[a].1 - pos[b].1).powi(2);
    let mut outside: Vec<usize> = (0..pos.len()).filter(|&j| comps[j] != main).collect();
    // (distance², nearest inside node) of every outside node.
    let mut nearest: Vec<(f64, usize)> = vec![(f64::INFINITY, usize::MAX); pos.len()];
    let closer = |cand: (f64, usize), cur: (f64, usize)| cand.0 < cur.0 || (cand.0 == cur.0 && cand.1 < cur.1);
    for &j in &outside {
        for i in (0..pos.len()).filter(|&i| comps[i] == main) {
            if closer((d2(i, j), i), nearest[j]) {
                nearest[j] = (d2(i, j), i);
            }
        }
    }
    while !outside.is_empty() {
        let key = |&j: &usize| (nearest[j].0, nearest[j].1, j);
        let j = *outside.iter().min_by(|a, b| key(a).partial_cmp(&key(b)).expect("finite distances")).expect("not empty");
        link(t, nearest[j].1 as u32, j as u32);
        let joined = comps[j];
        let (new, rest): (Vec<usize>, Vec<usize>) = outside.into_iter().partition(|&m| comps[m] == joined);
        outside = rest;
        for &m in &outside {
            for &i in &new {
                if closer((d2(i, m), i), nearest[m]) {
                    nearest[m] = (d2(i, m), i);
                }
            }
        }
    }
}

pub fn erdos_renyi(n: u32, p: f64, rng: &mut ChaCha8Rng) -> Topology {
    let mut t = empty(n, format!("Erdős–Rényi, {n} nodes, p {p:.5}"));
    for i in 0..n {
        for j in (i + 1)..n {
            if rng.random::<f64>() < p {
                link(&mut t, i, j);
            }
        }
    }
    t
}

/// Preferential attachment: start from a clique of `m + 1` nodes, then each new node links
/// to `m` distinct existing nodes chosen with probability proportional to degree.
pub fn barabasi_albert(n: u32, m: u32, rng: &mut ChaCha8Rng) -> Topology {
    let mut t = empty(n, format!("Barabási–Albert, {n} nodes, m {m}"));
    let seed_nodes = (m + 1).min(n);
    let mut ends: Vec<u32> = Vec::new();
    for i in 0..seed_nodes {
        for j in (i + 1)..seed_nodes {
            link(&mut t, i, j);
            ends.extend([i, j]);
        }
    }
    for v in seed_nodes..n {
        let mut chosen: Vec<u32> = Vec::with_capacity(m as usize);
        while chosen.len() < m as usize {
            let u = ends[rng.random_range(0..ends.len())];
            if !chosen.contains(&u) {
                chosen.push(u);
            }
        }
        for &u in &chosen {
            link(&mut t, v, u);
            ends.extend([v, u]);
        }
    }
    t
}

/// Loads a topology file; the format follows the extension unless given.
pub fn load_file(path: &Path, format: Option<FileFormat>) -> Result<Topology, TopologyError> {
    let text = std::fs::read_to_string(path).map_err(|source| TopologyError::Read { path: path.to_path_buf(), source })?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let format = format.unwrap_or(match ext.as_str() {
        "graphml" | "xml" => FileFormat::Graphml,
        "json" => FileFormat::Meshnet,
        _ => FileFormat::Edgelist,
    });
    let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let mut t = match format {
        FileFormat::Graphml => parse_graphml(&text).map_err(|detail| TopologyError::GraphMl { path: path.into(), detail })?,
        FileFormat::Meshnet => parse_meshnet(&text).map_err(|detail| TopologyError::Meshnet { path: path.into(), detail })?,
        FileFormat::Edgelist => {
            parse_edgelist(&text).map_err(|(line, detail)| TopologyError::EdgeList { path: path.into(), line, detail })?
        }
    };
    let note = if t.description.is_empty() { String::new() } else { format!(", {}", t.description) };
    t.description = format!("{name} ({} nodes, {} links{note})", t.graph.node_count(), t.edge_count());
    Ok(t)
}

/// Adds an undirected edge unless it is a self-loop or already present (files list
/// parallel links; the simulator models one link per pair).
fn add_unique(t: &mut Topology, seen: &mut FxHashMap<(u32, u32), EdgeIndex>, a: u32, b: u32, info: LinkInfo) {
    if a == b {
        return;
    }
    let key = (a.min(b), a.max(b));
    if seen.contains_key(&key) {
        return;
    }
    // Store the edge low-to-high so delivery directions line up with (source, target).
    let info = if a > b { LinkInfo { delivery: info.delivery.map(|[x, y]| [y, x]), ..info } } else { info };
    let e = t.graph.add_edge(NodeIndex::new(key.0 as usize), NodeIndex::new(key.1 as usize), info);
    seen.insert(key, e);
}

fn haversine_km((lat1, lon1): (f64, f64), (lat2, lon2): (f64, f64)) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0 * a.sqrt().asin()
}

/// Propagation delay between two geographic positions, floored at [`MIN_LATENCY`].
fn geo_latency(a: (f64, f64), b: (f64, f64)) -> Duration {
    Duration::from_nanos((haversine_km(a, b) * FIBRE_NS_PER_KM).round() as u64).max(MIN_LATENCY)
}

/// GraphML as the Internet Topology Zoo writes it: `key` declarations, `node` ids,
/// `Latitude`/`Longitude` data on nodes.
fn parse_graphml(text: &str) -> Result<Topology, String> {
    let doc = roxmltree::Document::parse(text).map_err(|e| e.to_string())?;
    let mut keys: FxHashMap<&str, String> = FxHashMap::default();
    for k in doc.descendants().filter(|n| n.has_tag_name("key")) {
        if let (Some(id), Some(name)) = (k.attribute("id"), k.attribute("attr.name")) {
            keys.insert(id, name.to_ascii_lowercase());
        }
    }
    let graph = doc.descendants().find(|n| n.has_tag_name("graph")).ok_or("no <graph> element")?;
    let mut t = empty(0, String::new());
    let mut index: FxHashMap<&str, u32> = FxHashMap::default();
    for node in graph.children().filter(|n| n.has_tag_name("node")) {
        let id = node.attribute("id").ok_or_else(|| format!("a <node> at byte {} has no id", node.range().start))?;
        let (mut lat, mut lon, mut label) = (None, None, None);
        for d in node.children().filter(|n| n.has_tag_name("data")) {
            let key = d.attribute("key").and_then(|k| keys.get(k)).map(String::as_str);
            let value = d.text().unwrap_or("").trim();
            match key {
                Some("latitude") => lat = value.parse::<f64>().ok(),
                Some("longitude") => lon = value.parse::<f64>().ok(),
                Some("label") => label = Some(value.to_string()),
                _ => {}
            }
        }
        if index.insert(id, t.graph.node_count() as u32).is_some() {
            return Err(format!("node id {id:?} appears twice"));
        }
        let pos = lat.zip(lon);
        t.graph.add_node(NodeInfo { name: label.unwrap_or_else(|| id.to_string()), pos });
    }
    let mut seen = FxHashMap::default();
    for edge in graph.children().filter(|n| n.has_tag_name("edge")) {
        let end = |attr: &str| -> Result<u32, String> {
            let v = edge.attribute(attr).ok_or_else(|| format!("an <edge> has no {attr}"))?;
            index.get(v).copied().ok_or_else(|| format!("an <edge> names unknown node {v:?}"))
        };
        let (a, b) = (end("source")?, end("target")?);
        let pa = t.graph[NodeIndex::new(a as usize)].pos;
        let pb = t.graph[NodeIndex::new(b as usize)].pos;
        let latency = pa.zip(pb).map(|(pa, pb)| geo_latency(pa, pb));
        add_unique(&mut t, &mut seen, a, b, LinkInfo { latency, delivery: None });
    }
    Ok(t)
}

/// meshnet-lab JSON: `{"nodes": [{"id": ..}], "links": [{"source", "target", "source_tq",
/// "target_tq"}]}`. Ids may be numbers or strings. `source_tq` is taken as the delivery
/// probability from source to target, `target_tq` as the reverse.
fn parse_meshnet(text: &str) -> Result<Topology, String> {
    use serde_json::Value;
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let key = |v: &Value| -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let links = v.get("links").and_then(Value::as_array).ok_or("no \"links\" array")?;
    let mut t = empty(0, String::new());
    let mut index: FxHashMap<String, u32> = FxHashMap::default();
    let mut intern = |t: &mut Topology, id: String, name: Option<String>, pos: Option<(f64, f64)>| -> u32 {
        *index.entry(id.clone()).or_insert_with(|| {
            t.graph.add_node(NodeInfo { name: name.unwrap_or(id), pos });
            t.graph.node_count() as u32 - 1
        })
    };
    // Some published maps list a node id more than once (freifunk-berlin: 976 entries, 760
    // ids). Like meshnet-lab's own graph loading, entries with one id are one node: the
    // first entry names it. The description says how many were merged.
    let mut duplicates = 0;
    if let Some(nodes) = v.get("nodes").and_then(Value::as_array) {
        for (i, n) in nodes.iter().enumerate() {
            let id = n.get("id").and_then(key).ok_or_else(|| format!("nodes[{i}] has no id"))?;
            let name = n.get("name").and_then(Value::as_str).map(str::to_string);
            let pos = n.get("x").and_then(Value::as_f64).zip(n.get("y").and_then(Value::as_f64));
            let before = t.graph.node_count();
            intern(&mut t, id, name, pos);
            if t.graph.node_count() == before {
                duplicates += 1;
            }
        }
    }
    let mut seen = FxHashMap::default();
    for (i, l) in links.iter().enumerate() {
        let end = |field: &str| l.get(field).and_then(key).ok_or_else(|| format!("links[{i}] has no {field}"));
        let (a, b) = (end("source")?, end("target")?);
        let (a, b) = (intern(&mut t, a, None, None), intern(&mut t, b, None, None));
        let tq = |field: &str| -> Result<Option<Percent>, String> {
            match l.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => match v.as_f64() {
                    Some(x) if (0.0..=1.0).contains(&x) => Ok(Some(Percent::from_ratio(x))),
                    _ => Err(format!("links[{i}].{field} is {v}, expected a number from 0 to 1")),
                },
            }
        };
        let delivery = match (tq("source_tq")?, tq("target_tq")?) {
            (None, None) => None,
            (ab, ba) => Some([ab.unwrap_or(Percent::HUNDRED), ba.unwrap_or(Percent::HUNDRED)]),
        };
        add_unique(&mut t, &mut seen, a, b, LinkInfo { latency: None, delivery });
    }
    if duplicates > 0 {
        t.description = format!("{duplicates} duplicate node entries merged");
    }
    Ok(t)
}

/// One link per line: `a b` or `a b latency` (e.g. `5ms`); `#` starts a comment. Node
/// names are any tokens, numbered in order of first appearance.
fn parse_edgelist(text: &str) -> Result<Topology, (usize, String)> {
    let mut t = empty(0, String::new());
    let mut index: FxHashMap<String, u32> = FxHashMap::default();
    let mut seen = FxHashMap::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if !(2..=3).contains(&fields.len()) {
            return Err((i + 1, format!("expected `a b` or `a b latency`, found {line:?}")));
        }
        let mut id = |name: &str| {
            *index.entry(name.to_string()).or_insert_with(|| {
                t.graph.add_node(NodeInfo { name: name.to_string(), pos: None });
                t.graph.node_count() as u32 - 1
            })
        };
        let (a, b) = (id(fields[0]), id(fields[1]));
        let latency = match fields.get(2) {
            Some(l) => Some(x0tta6bl4::units::parse_duration(l).map_err(|e| (i + 1, e.to_string()))?),
            None => None,
        };
        add_unique(&mut t, &mut seen, a, b, LinkInfo { latency, delivery: None });
    }
    Ok(t)
}
