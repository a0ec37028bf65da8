//! The metric definitions on hand-made records, where the right answer is known.

use std::time::Duration;
use x0tta6bl4::ids::{IfIndex, NodeId, PeerAddr};
use x0tta6bl4::metrics::{
    AddressBook, FaultRecord, Observations, ProbeIndex, ProbeRecord, RunCounters, Stats, Summary, TimedEvent,
    evaluate_fault, honest_isolations,
};
use x0tta6bl4::node::{Event, Incident, Misbehaviour, NeighbourState};
use x0tta6bl4::scenario::{Assertion, SteadyState};
use x0tta6bl4::time::Instant;
use x0tta6bl4::units::Percent;

fn ms(v: u64) -> Instant {
    Instant::from_nanos(v * 1_000_000)
}

fn crash_of(node: u32, at: u64) -> FaultRecord {
    FaultRecord {
        spec: 0,
        instance: 0,
        name: "crash".into(),
        kind: "crash",
        node_fault: true,
        failure: true,
        byzantine: false,
        t_inject: ms(at),
        t_heal: Some(ms(at + 3000)),
        nodes: vec![NodeId(node)],
        links: vec![],
    }
}

fn neighbour(t: u64, observer: u32, peer: u32, state: NeighbourState) -> TimedEvent {
    TimedEvent { t: ms(t), node: NodeId(observer), event: Event::Neighbour { at: ms(t), iface: IfIndex(0), peer: NodeId(peer), state } }
}

/// Two pairs probed every 100 ms from 0 to 5 s. Pair 0 goes through the crashed node and
/// fails from 1000 ms until its probe at 1400 ms succeeds; pair 1 is never affected.
fn probes() -> Vec<ProbeRecord> {
    let mut v = Vec::new();
    for i in 0..50u64 {
        let t = i * 100;
        v.push(ProbeRecord { sent: ms(t), pair: 0, path: true, ok: !(1000..1400).contains(&t) });
        v.push(ProbeRecord { sent: ms(t + 10), pair: 1, path: true, ok: true });
    }
    v
}

fn observations<'a>(events: &'a [TimedEvent], index: &'a ProbeIndex<'a>, steady: &'a SteadyState, fps: &'a [Instant]) -> Observations<'a> {
    Observations {
        events,
        probes: index,
        false_positives: fps,
        steady_state: steady,
        recovery_window: Duration::from_secs(3),
        false_positive_grace: Duration::from_secs(1),
        horizon: ms(5000),
        addresses: &NO_ADDRESSES,
    }
}

static NO_ADDRESSES: AddressBook = AddressBook(std::collections::BTreeMap::new());

fn isolation(t: u64, observer: u32, culprit: PeerAddr) -> TimedEvent {
    let incident = Incident::Isolated { iface: IfIndex(0), addr: culprit, misbehaviour: Misbehaviour::DropsTransit };
    TimedEvent { t: ms(t), node: NodeId(observer), event: Event::Incident { at: ms(t), incident } }
}

fn blackhole_of(node: u32, at: u64) -> FaultRecord {
    FaultRecord { name: "blackhole".into(), kind: "blackhole", byzantine: true, t_heal: None, ..crash_of(node, at) }
}

#[test]
fn a_byzantine_fault_is_detected_by_isolating_its_offender_not_by_suspicion() {
    let f = blackhole_of(5, 1000);
    let steady = SteadyState { probe_success: Percent::from_ppm(900_000), window: Duration::from_millis(500) };
    let probes = probes();
    let index = ProbeIndex::new(&probes, 2);
    let events = vec![
        // Suspecting the offender is not detecting its misbehaviour.
        neighbour(1100, 4, 5, NeighbourState::Suspected),
        // The offender isolating someone says nothing about it.
        isolation(1200, 5, PeerAddr::synthetic(NodeId(4))),
        isolation(1300, 4, PeerAddr::synthetic(NodeId(5))),
    ];
    let o = evaluate_fault(&f, &observations(&events, &index, &steady, &[]));
    assert_eq!(o.mttd(&f), Some(Duration::from_millis(300)));
}

#[test]
fn honest_isolations_count_honest_nodes_cut_off_by_honest_nodes() {
    let records = [blackhole_of(5, 1000)];
    let events = [
        isolation(1300, 4, PeerAddr::synthetic(NodeId(5))),
        isolation(1400, 5, PeerAddr::synthetic(NodeId(4))),
        isolation(1500, 4, PeerAddr::synthetic(NodeId(6))),
    ];
    assert_eq!(honest_isolations(&records, &events, &NO_ADDRESSES), 1);
    // An address the book does not know names nobody, so it counts nowhere.
    let unknown = PeerAddr { ip: [0xfe; 16], port: 6696 };
    assert_eq!(honest_isolations(&records, &[isolation(1500, 4, unknown)], &NO_ADDRESSES), 0);
    // Without a Byzantine fault, every isolation is of an honest node.
    assert_eq!(honest_isolations(&[], &events, &NO_ADDRESSES), 3);
}

#[test]
fn mttd_mttr_and_steady_state_follow_their_definitions() {
    let events = vec![
        // Before injection: not a detection of this fault.
        neighbour(900, 1, 7, NeighbourState::Suspected),
        // The node itself "suspecting" someone is not a detection of it.
        neighbour(1050, 7, 1, NeighbourState::Suspected),
        neighbour(1180, 2, 7, NeighbourState::Suspected),
        neighbour(1250, 2, 7, NeighbourState::Down),
    ];
    let probes = probes();
    let index = ProbeIndex::new(&probes, 2);
    let steady = SteadyState { probe_success: Percent::from_ppm(990_000), window: Duration::from_millis(500) };
    let fault = crash_of(7, 1000);
    let o = evaluate_fault(&fault, &observations(&events, &index, &steady, &[]));
    assert_eq!(o.mttd(&fault), Some(Duration::from_millis(180)));
    assert_eq!(o.mttr(&fault), Some(Duration::from_millis(400)), "first success after the first failure");
    assert_eq!(o.disrupted_pairs, 1);
    assert_eq!(o.unrecovered_pairs, 0);
    // The window [T, T+500ms) is clean from just after the last failure at 1300 ms.
    assert_eq!(o.steady(&fault), Some(Duration::from_millis(300) + Duration::from_nanos(1)));
    // Lost during [1000, 4000): 4 of 60 judged probes.
    assert_eq!((o.probes_sent, o.probes_lost), (60, 4));
}

#[test]
fn a_fault_that_breaks_no_probed_path_has_no_mttr() {
    let probes: Vec<ProbeRecord> = (0..50).map(|i| ProbeRecord { sent: ms(i * 100), pair: 0, path: true, ok: true }).collect();
    let index = ProbeIndex::new(&probes, 1);
    let steady = SteadyState::default();
    let fault = crash_of(7, 1000);
    let o = evaluate_fault(&fault, &observations(&[], &index, &steady, &[]));
    assert_eq!(o.mttd(&fault), None, "nobody noticed");
    assert_eq!(o.mttr(&fault), None, "nothing to repair");
    assert_eq!(o.disrupted_pairs, 0);
}

#[test]
fn a_pair_that_never_recovers_is_unrecovered() {
    let probes: Vec<ProbeRecord> =
        (0..50).map(|i| ProbeRecord { sent: ms(i * 100), pair: 0, path: true, ok: i * 100 < 1000 }).collect();
    let index = ProbeIndex::new(&probes, 1);
    let steady = SteadyState::default();
    let fault = crash_of(7, 1000);
    let o = evaluate_fault(&fault, &observations(&[], &index, &steady, &[]));
    assert_eq!(o.unrecovered_pairs, 1);
    assert!(o.unrecovered());
    assert_eq!(o.mttr(&fault), None);
}

#[test]
fn probes_without_a_path_are_not_judged() {
    // The destination itself crashed: its pair has no path, so its failures say nothing.
    let probes: Vec<ProbeRecord> =
        (0..50).map(|i| ProbeRecord { sent: ms(i * 100), pair: 0, path: i * 100 < 1000, ok: i * 100 < 1000 }).collect();
    let index = ProbeIndex::new(&probes, 1);
    let steady = SteadyState::default();
    let fault = crash_of(7, 1000);
    let o = evaluate_fault(&fault, &observations(&[], &index, &steady, &[]));
    assert_eq!((o.disrupted_pairs, o.probes_sent), (0, 0));
}

#[test]
fn link_faults_are_detected_by_their_endpoints_only() {
    let fault = FaultRecord { node_fault: false, nodes: vec![], links: vec![(NodeId(3), NodeId(4))], ..crash_of(0, 1000) };
    let far = TimedEvent {
        t: ms(1100),
        node: NodeId(9),
        event: Event::Route { at: ms(1100), dest: NodeId(1), next_hop: None, previous: Some(NodeId(8)), metric: 0xFFFF },
    };
    let near = TimedEvent {
        t: ms(1150),
        node: NodeId(4),
        event: Event::Route { at: ms(1150), dest: NodeId(1), next_hop: Some(NodeId(5)), previous: Some(NodeId(3)), metric: 512 },
    };
    let probes = probes();
    let index = ProbeIndex::new(&probes, 2);
    let steady = SteadyState::default();
    let o = evaluate_fault(&fault, &observations(&[far, near], &index, &steady, &[]));
    assert_eq!(o.mttd(&fault), Some(Duration::from_millis(150)));
}

#[test]
fn nearest_rank_percentiles() {
    let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
    let s = Stats::of(&mut v);
    assert_eq!((s.count, s.p50, s.p95, s.p99, s.max), (100, 50.0, 95.0, 99.0, 100.0));
    assert_eq!(s.mean, 50.5);
    let mut one = vec![7.0];
    let s = Stats::of(&mut one);
    assert_eq!((s.p50, s.p99, s.max), (7.0, 7.0, 7.0));
    assert_eq!(Stats::of(&mut []).count, 0);
}

#[test]
fn assertions_compare_in_the_metrics_units() {
    let fault = crash_of(7, 1000);
    let outcome = {
        let probes = probes();
        let index = ProbeIndex::new(&probes, 2);
        let steady = SteadyState::default();
        let events = [neighbour(1180, 2, 7, NeighbourState::Suspected)];
        evaluate_fault(&fault, &observations(&events, &index, &steady, &[]))
    };
    let counters = RunCounters { loops: 1, probes: 100, probes_ok: 99, ..RunCounters::default() };
    let faults = [(fault, outcome)];
    let s = Summary::of(&[(&faults, &counters)]);
    let check = |text: &str| s.check(&Assertion::parse(text).expect("parses")).passed;
    assert!(check("mttd.p99 < 300ms"));
    assert!(!check("mttd.p99 < 100ms"));
    assert!(check("mttr.max <= 400ms"));
    assert!(!check("loops == 0"), "one loop was counted");
    assert!(check("probe_success >= 99%"));
    assert!(!check("probe_success > 99%"));
    // No sample is a failure, not a vacuous pass.
    assert!(!check("stretch.p99 < 2"));
}

#[test]
fn assertion_syntax() {
    let a = Assertion::parse("  mttr.p95 >= 1.5s ").expect("parses");
    assert_eq!(a.threshold.value(), 1500.0);
    for (bad, why) in [
        ("mttd < 300ms", "distribution"),
        ("loops.p99 == 0", "single number"),
        ("latency.p99 < 3ms", "unknown metric"),
        ("mttd.p42 < 3ms", "unknown statistic"),
        ("mttd.p99 300ms", "no comparison"),
        ("mttd.p99 < 3 parsecs", "not a duration"),
        ("probe_success > 0.99", "percentage"),
        ("loops == many", "not a number"),
    ] {
        let err = Assertion::parse(bad).expect_err(bad);
        assert!(err.contains(why), "{bad}: {err}");
    }
}
