//! `x0 topo`: build a topology from a short spec, a YAML spec, a scenario or a file, and
//! describe it or export it as DOT.

use crate::out::outln;
use anyhow::bail;
use std::path::Path;
use x0_sim::Topology;
use x0tta6bl4::scenario::TopologySpec;

#[derive(clap::Args)]
pub struct TopoArgs {
    /// `grid:7x7`, `ring:10`, `line:5`, `random_geometric:1000:6` (nodes, mean degree),
    /// `erdos_renyi:200:4`, `barabasi_albert:500:2`, a topology file (GraphML, meshnet-lab
    /// JSON, edge list), a scenario YAML, or a YAML spec like '{grid: {rows: 3, cols: 4}}'.
    pub spec: String,
    /// Print Graphviz DOT instead of a summary.
    #[arg(long)]
    pub dot: bool,
    /// Seed for random generators.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

fn short_spec(spec: &str) -> Option<anyhow::Result<String>> {
    let (kind, rest) = spec.split_once(':')?;
    let nums: Vec<&str> = rest.split([':', 'x']).collect();
    let yaml = match (kind, nums.as_slice()) {
        ("grid", [r, c]) => format!("{{grid: {{rows: {r}, cols: {c}}}}}"),
        ("ring" | "line", [n]) => format!("{{{kind}: {{nodes: {n}}}}}"),
        ("random_geometric" | "erdos_renyi", [n, d]) => format!("{{{kind}: {{nodes: {n}, degree: {d}}}}}"),
        ("barabasi_albert", [n, m]) => format!("{{{kind}: {{nodes: {n}, m: {m}}}}}"),
        ("grid" | "ring" | "line" | "random_geometric" | "erdos_renyi" | "barabasi_albert", _) => {
            return Some(Err(anyhow::anyhow!(
                "{spec:?}: expected grid:ROWSxCOLS, ring:N, line:N, random_geometric:N:DEGREE, \
                 erdos_renyi:N:DEGREE or barabasi_albert:N:M"
            )));
        }
        _ => return None,
    };
    Some(Ok(yaml))
}

/// The topology `spec` names (see [`TopoArgs::spec`]); `seed` drives random generators.
pub fn build(spec: &str, seed: u64) -> anyhow::Result<Topology> {
    let path = Path::new(spec);
    if path.is_file() {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if matches!(ext, "yaml" | "yml") {
            let scenario = x0_sim::read_scenario(path)?;
            return Ok(x0_sim::build_topology(&scenario, seed)?);
        }
        return Ok(x0_sim::topology::load_file(path, None)?);
    }
    let yaml = match short_spec(spec) {
        Some(y) => y?,
        None if spec.trim_start().starts_with('{') => spec.to_string(),
        None => bail!("{spec:?} is neither a file nor a topology spec (try grid:7x7 or --help)"),
    };
    let spec: TopologySpec = serde_saphyr::from_str(&yaml)
        .map_err(|e| anyhow::anyhow!("{}", e.render_with_options(serde_saphyr::render_options! { source_name: Some("spec") })))?;
    Ok(Topology::from_spec(&spec, Path::new("."), seed)?)
}

pub fn topo(args: &TopoArgs) -> anyhow::Result<()> {
    let t = build(&args.spec, args.seed)?;
    if args.dot {
        outln!("{}", t.to_dot().trim_end());
        return Ok(());
    }
    let degrees: Vec<usize> = t.graph.node_indices().map(|n| t.graph.edges(n).count()).collect();
    let components = {
        let mut c = x0_sim::topology::components(&t.graph);
        c.sort_unstable();
        c.dedup();
        c.len()
    };
    outln!("{}", t.description);
    outln!(
        "nodes {}, links {}, degree min {} mean {:.2} max {}, {} connected component{}",
        t.node_count(),
        t.edge_count(),
        degrees.iter().min().copied().unwrap_or(0),
        t.mean_degree(),
        degrees.iter().max().copied().unwrap_or(0),
        components,
        if components == 1 { "" } else { "s" }
    );
    outln!("id\tdegree\tname");
    for (i, n) in t.graph.node_indices().enumerate() {
        outln!("{i}\t{}\t{}", degrees[i], t.graph[n].name);
    }
    Ok(())
}
