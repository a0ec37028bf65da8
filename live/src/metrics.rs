//! Prometheus metrics of one node: the core's counters, exported as they are, and a few
//! gauges. The daemon updates them after every input; scrapes read atomics.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use x0tta6bl4::node::{Node, NodeStats};

type Field = fn(&NodeStats) -> u64;

/// Every counter of [`NodeStats`], by its Prometheus name (without the `x0_` prefix and
/// `_total` suffix the registry adds).
const COUNTERS: &[(&str, &str, Field)] = &[
    ("frames_rx", "Frames received", |s| s.frames_rx),
    ("bytes_rx", "Bytes received", |s| s.bytes_rx),
    ("decode_errors", "Frames that failed to decode", |s| s.decode_errors),
    ("own_frames_rx", "Frames carrying our own id", |s| s.own_frames_rx),
    ("updates_rx", "Route updates received", |s| s.updates_rx),
    ("updates_unfeasible", "Route updates refused by the feasibility condition", |s| s.updates_unfeasible),
    ("updates_out_of_scope", "Route updates for destinations outside this node's area scope", |s| s.updates_out_of_scope),
    ("data_forwarded", "Data packets forwarded", |s| s.data_forwarded),
    ("data_delivered", "Data packets delivered here", |s| s.data_delivered),
    ("data_no_route", "Data packets dropped for want of a route", |s| s.data_no_route),
    ("ttl_expired", "Data packets dropped at TTL 0", |s| s.ttl_expired),
    ("probes_sent", "Reachability probes sent", |s| s.probes_sent),
    ("probes_delivered", "Reachability probes answered", |s| s.probes_delivered),
    ("probes_lost", "Reachability probes unanswered", |s| s.probes_lost),
    ("seqno_requests_sent", "Seqno requests sent", |s| s.seqno_requests_sent),
    ("seqno_requests_forwarded", "Seqno requests forwarded", |s| s.seqno_requests_forwarded),
    ("neighbour_table_full", "Neighbours refused: table full", |s| s.neighbour_table_full),
    ("destination_table_full", "Destinations refused: table full", |s| s.destination_table_full),
    ("events_dropped", "Events dropped: queue full", |s| s.events_dropped),
];

pub struct Metrics {
    registry: Registry,
    counters: Vec<(Counter, Field)>,
    last: NodeStats,
    neighbours: Gauge,
    destinations: Gauge,
    pub tx_errors: Counter,
    pub rx_errors: Counter,
    pub events_lagged: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("x0");
        let counters = COUNTERS
            .iter()
            .map(|&(name, help, field)| {
                let c = Counter::default();
                registry.register(name, help, c.clone());
                (c, field)
            })
            .collect();
        let neighbours = Gauge::default();
        registry.register("neighbours", "Neighbours in the table", neighbours.clone());
        let destinations = Gauge::default();
        registry.register("destinations", "Destinations in the routing table", destinations.clone());
        let tx_errors = Counter::default();
        registry.register("socket_send_errors", "Frames the kernel refused to send", tx_errors.clone());
        let rx_errors = Counter::default();
        registry.register("socket_receive_errors", "Errors receiving from a socket", rx_errors.clone());
        let events_lagged = Counter::default();
        registry.register("event_stream_lagged", "Events a slow event-stream client missed", events_lagged.clone());
        Metrics { registry, counters, last: NodeStats::default(), neighbours, destinations, tx_errors, rx_errors, events_lagged }
    }
}

impl Metrics {
    /// Brings the exported values up to the node's.
    pub fn update(&mut self, node: &Node) {
        let now = node.stats();
        for (c, field) in &self.counters {
            c.inc_by(field(now).saturating_sub(field(&self.last)));
        }
        self.last = now.clone();
        self.neighbours.set(node.neighbours().count() as i64);
        self.destinations.set(node.destinations() as i64);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
