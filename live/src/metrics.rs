//! Prometheus metrics of one node: the core's counters, exported as they are, and a few
//! gauges. The daemon updates them after every input; scrapes read atomics.

use prometheus_client::encoding::text::encode;
use crate::xdp::{PeerCounters, XdpHandle, XdpStats};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use x0tta6bl4::node::{Node, NodeStats};

type Field = fn(&NodeStats) -> u64;

/// Peers with their own counter series; past this, new source addresses (forged floods)
/// are not given one. The XDP map itself is an LRU of 1024.
const PEER_SERIES_MAX: usize = 4096;

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
    ("handshakes_started", "Link handshakes this node initiated", |s| s.handshakes_started),
    ("handshakes_completed", "Link handshakes that admitted a neighbour", |s| s.handshakes_completed),
    ("handshakes_failed", "Link handshakes abandoned after every resend", |s| s.handshakes_failed),
    ("handshakes_rejected", "Handshake messages malformed, misaddressed or badly signed", |s| s.handshakes_rejected),
    ("handshakes_rate_limited", "Handshakes not answered: security.handshakes_per_s spent", |s| s.handshakes_rate_limited),
    ("identities_refused", "Peers the trust policy refused", |s| s.identities_refused),
    ("unauthenticated_rx", "Frames in the clear or sealed without a session, dropped", |s| s.unauthenticated_rx),
    ("forged_rx", "Sealed frames that failed authentication, dropped", |s| s.forged_rx),
    ("replayed_rx", "Sealed frames replayed or older than the replay window, dropped", |s| s.replayed_rx),
    ("unsealable_tx", "Frames for an address with no admitted peer, not sent", |s| s.unsealable_tx),
    ("security_mismatch_rx", "Frames from a neighbour configured with different link security", |s| s.security_mismatch_rx),
    ("blocked_rx", "Frames dropped unread because their sender's address is isolated", |s| s.blocked_rx),
    ("isolations", "Addresses and neighbours isolated as Byzantine", |s| s.isolations),
    ("attacks_reported", "Attacks reported that could not be pinned on a sender (replays)", |s| s.attacks_reported),
    ("audits_started", "Audits of a next hop started after probes through it were lost", |s| s.audits_started),
    ("audits_answered", "Audits of this node answered for a neighbour", |s| s.audits_answered),
    ("updates_isolated", "Route updates from an isolated neighbour, ignored", |s| s.updates_isolated),
    ("unreachable_rx", "Port-unreachable reports for frames sent to a neighbour", |s| s.unreachable_rx),
    ("unreachable_ignored", "Port-unreachable reports not acted on (unproven, stale or for no neighbour)", |s| s.unreachable_ignored),
    ("unreachable_suspicions", "Neighbours suspected on a port-unreachable report", |s| s.unreachable_suspicions),
    ("unreachable_downs", "Neighbours declared down on a report answering a confirmation ping", |s| s.unreachable_downs),
    ("kernel_unhandled", "Frames from neighbours the kernel passed (XDP count) that never reached the node", |s| s.kernel_unhandled),
    ("kernel_deferrals", "Silences whose suspicion was put off because the kernel was still receiving the neighbour's frames", |s| s.kernel_deferrals),
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
    xdp: [Counter; 5],
    xdp_last: XdpStats,
    /// Per-peer packets and bytes as the XDP program counted them, labelled by address.
    peer_packets: Family<Vec<(String, String)>, Counter>,
    peer_bytes: Family<Vec<(String, String)>, Counter>,
    peer_passed: Family<Vec<(String, String)>, Counter>,
    peer_last: std::collections::BTreeMap<std::net::Ipv6Addr, PeerCounters>,
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
        let xdp: [Counter; 5] = Default::default();
        let names = [
            ("xdp_passed", "Protocol packets the XDP program passed"),
            ("xdp_blocked", "Protocol packets dropped in the kernel from quarantined peers"),
            ("xdp_lost", "Protocol packets dropped in the kernel by injected loss"),
            ("xdp_other", "Other packets the XDP program let through untouched"),
            ("xdp_malformed", "Truncated packets the XDP program left to the stack"),
        ];
        for (c, (name, help)) in xdp.iter().zip(names) {
            registry.register(name, help, c.clone());
        }
        let peer_packets = Family::default();
        registry.register("xdp_peer_packets", "Protocol packets received per peer, counted by XDP", peer_packets.clone());
        let peer_bytes = Family::default();
        registry.register("xdp_peer_bytes", "Protocol bytes received per peer, counted by XDP", peer_bytes.clone());
        let peer_passed = Family::default();
        registry.register("xdp_peer_passed", "Protocol packets per peer that XDP passed to the stack", peer_passed.clone());
        Metrics {
            registry,
            counters,
            last: NodeStats::default(),
            neighbours,
            destinations,
            tx_errors,
            rx_errors,
            events_lagged,
            xdp,
            xdp_last: XdpStats::default(),
            peer_packets,
            peer_bytes,
            peer_passed,
            peer_last: Default::default(),
        }
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

    /// Brings the XDP program's counters in (at scrape time: they live in kernel maps).
    pub fn update_xdp(&mut self, xdp: &XdpHandle) {
        // Per-peer counters first, totals second: a packet counted between the two reads
        // then shows in the totals and not yet per peer, never the other way round, so a
        // scrape never shows a peer's packets passed while the total passed is behind.
        let peers = xdp.peer_counters();
        let (now, last) = (xdp.stats(), self.xdp_last);
        let pairs = [
            (now.passed, last.passed),
            (now.blocked, last.blocked),
            (now.lost, last.lost),
            (now.other, last.other),
            (now.malformed, last.malformed),
        ];
        for (c, (n, l)) in self.xdp.iter().zip(pairs) {
            c.inc_by(n.saturating_sub(l));
        }
        self.xdp_last = now;
        for (addr, c) in peers {
            if !self.peer_last.contains_key(&addr) && self.peer_last.len() >= PEER_SERIES_MAX {
                continue;
            }
            let last = self.peer_last.get(&addr).copied().unwrap_or_default();
            let labels = vec![("peer".to_string(), addr.to_string())];
            self.peer_packets.get_or_create(&labels).inc_by(c.packets.saturating_sub(last.packets));
            self.peer_bytes.get_or_create(&labels).inc_by(c.bytes.saturating_sub(last.bytes));
            self.peer_passed.get_or_create(&labels).inc_by(c.passed.saturating_sub(last.passed));
            self.peer_last.insert(addr, c);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
