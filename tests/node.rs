//! The core `Node` driven directly, two nodes on one link, with a hand-rolled clock and
//! delivery: failure-detector timing, refutation, restarts, probes and the output contract.

use std::time::Duration;
use x0tta6bl4::area::{AreaPlan, area_id};
use x0tta6bl4::config::ProtocolConfig;
use x0tta6bl4::ids::{IfIndex, NodeId, PeerAddr};
use x0tta6bl4::node::{Command, Event, Incident, KERNEL_GRACE_HELLOS, KernelCounts, NeighbourState, Node, OutputBuffers, ProbeOutcome, Transmit};
use x0tta6bl4::time::Instant;
use x0tta6bl4::wire::{self, ControlWriter, Tlv, TlvIter};

mod pair;

use pair::{LATENCY, Pair, no_drop, secs};

#[test]
fn neighbours_come_up_and_route_to_each_other() {
    let mut p = Pair::new(ProtocolConfig::default());
    p.run_until(secs(1.0), &mut no_drop());
    for i in 0..2 {
        assert_eq!(p.neighbour_events(i).first().map(|e| e.1), Some(NeighbourState::Up), "node {i} never saw its neighbour");
        let other = NodeId(1 - i as u32);
        let route = p.nodes[i].route(other).expect("route to the neighbour");
        assert_eq!(route.next_hop, other);
        assert_eq!(route.metric, 256, "one clean hop costs 256");
    }
}

/// Detection timing on a clean link with 100 ms hellos: suspicion between one and three
/// hello intervals after the crash (the phi threshold with a 25 ms deviation floor puts it
/// at about 231 ms after the last hello), and the down verdict exactly after the
/// confirmation pings: 2 more pings 10 ms apart, then the 75 ms timeout.
#[test]
fn crash_is_suspected_then_confirmed_down_on_time() {
    let mut p = Pair::new(ProtocolConfig::default());
    p.run_until(secs(5.0), &mut no_drop());
    let crash = p.now;
    p.alive[1] = false;
    p.run_until(secs(7.0), &mut no_drop());
    let ev = p.neighbour_events(0);
    let suspected = ev.iter().find(|e| e.1 == NeighbourState::Suspected && e.0 > crash).expect("suspected").0;
    let down = ev.iter().find(|e| e.1 == NeighbourState::Down && e.0 > crash).expect("declared down").0;
    let mttd = suspected - crash;
    assert!(mttd >= Duration::from_millis(100), "suspected too early: {mttd:?} (less than one hello interval)");
    assert!(mttd <= Duration::from_millis(240), "suspected too late: {mttd:?}");
    assert_eq!(down - suspected, Duration::from_millis(95), "2 ping intervals + 75 ms confirmation timeout");
    assert!(p.nodes[0].route(NodeId(1)).is_none(), "the route through the dead neighbour is withdrawn");
}

/// A dead process on a live host: the first unicast frame to it comes back as a port
/// unreachable, which raises the suspicion at once; the first confirmation ping comes back
/// too, which settles it. Multicast hellos draw no report, so without unicast traffic
/// nothing is known before the detector's timeout.
#[test]
fn a_dead_process_is_found_by_the_first_unicast_frame_to_it() {
    let mut p = Pair::new(ProtocolConfig::default());
    p.hosts_answer = true;
    p.run_until(secs(5.0), &mut no_drop());
    let crash = p.now;
    p.alive[1] = false;
    p.run_until(crash + Duration::from_millis(90), &mut no_drop());
    assert!(p.neighbour_events(0).iter().all(|e| e.0 <= crash), "multicast hellos drew a report");
    let sent = p.now;
    p.nodes[0].handle_command(sent, Command::Probe { dst: NodeId(1), id: 1 }).expect("still routed");
    p.drain(0, &mut no_drop());
    p.run_until(sent + Duration::from_millis(10), &mut no_drop());
    let ev: Vec<_> = p.neighbour_events(0).into_iter().filter(|e| e.0 > crash).collect();
    // Probe out and report back: 2 ms; ping out and report back: 2 ms more.
    assert_eq!(ev, [(sent + LATENCY * 2, NeighbourState::Suspected), (sent + LATENCY * 4, NeighbourState::Down)]);
    let s = p.nodes[0].stats();
    assert_eq!((s.unreachable_rx, s.unreachable_suspicions, s.unreachable_downs, s.unreachable_ignored), (2, 1, 1, 0));
    assert!(p.nodes[0].route(NodeId(1)).is_none(), "the route through the dead neighbour is withdrawn");
}

/// A report proves nothing by itself: one quoting a frame this node did not send is
/// ignored, and one about a live neighbour is refuted by its answer to the ping. A second
/// report within a hello interval of the refutation is not acted on.
#[test]
fn reports_are_checked_and_refuted() {
    let mut p = Pair::new(ProtocolConfig::default());
    p.run_until(secs(3.0), &mut no_drop());
    let peer = PeerAddr::synthetic(NodeId(1));
    // The last frame `who` sends in the next 200 ms.
    let last_from = |p: &mut Pair, who: usize| {
        let mut last = None;
        p.run_until(p.now + Duration::from_millis(200), &mut |from, f: &[u8]| {
            if from == who {
                last = Some(f.to_vec());
            }
            false
        });
        last.expect("hellos go out every 100 ms")
    };
    let theirs = last_from(&mut p, 1);
    let ours = last_from(&mut p, 0);
    let t = p.now;
    for quoted in [&theirs[..], &[0xde, 0xad][..]] {
        p.nodes[0].handle_unreachable(t, IfIndex(0), peer, quoted);
    }
    p.nodes[0].handle_unreachable(t, IfIndex(0), PeerAddr::synthetic(NodeId(7)), &ours);
    p.drain(0, &mut no_drop());
    assert_eq!(p.nodes[0].stats().unreachable_ignored, 3);
    assert!(p.neighbour_events(0).iter().all(|e| e.0 < t), "a foreign report changed the neighbour");

    p.nodes[0].handle_unreachable(t, IfIndex(0), peer, &ours);
    p.drain(0, &mut no_drop());
    p.run_until(t + Duration::from_millis(5), &mut no_drop());
    let ev: Vec<_> = p.neighbour_events(0).into_iter().filter(|e| e.0 >= t).collect();
    assert_eq!(ev, [(t, NeighbourState::Suspected), (t + LATENCY * 2, NeighbourState::Up)], "refuted by the pong");
    p.nodes[0].handle_unreachable(p.now, IfIndex(0), peer, &ours);
    p.drain(0, &mut no_drop());
    assert_eq!(p.neighbour_events(0).len(), ev.len() + p.neighbour_events(0).iter().filter(|e| e.0 < t).count());
    assert_eq!(p.nodes[0].stats().unreachable_suspicions, 1);
}

/// A suspicion raised by a report keeps the confirmation cadence of one raised by silence:
/// pings 10 ms apart, then the timeout. (The node's cached deadline for the neighbour once
/// stayed at its pre-suspicion value, and the second ping waited for the next hello.)
#[test]
fn a_reported_suspicion_is_confirmed_on_time() {
    let cfg = ProtocolConfig::default();
    let det = cfg.detector.clone();
    let mut p = Pair::new(cfg);
    p.run_until(secs(3.0), &mut no_drop());
    let mut ours = None;
    p.run_until(p.now + Duration::from_millis(200), &mut |from, f: &[u8]| {
        if from == 0 {
            ours = Some(f.to_vec());
        }
        false
    });
    let ours = ours.expect("hellos go out every 100 ms");
    let t = p.now;
    p.nodes[0].handle_unreachable(t, IfIndex(0), PeerAddr::synthetic(NodeId(1)), &ours);
    p.drain(0, &mut no_drop());
    // Nothing from node 1 gets through any more: no pong refutes the suspicion.
    p.run_until(t + Duration::from_millis(300), &mut |from, _| from == 1);
    let ev: Vec<_> = p.neighbour_events(0).into_iter().filter(|e| e.0 >= t).collect();
    let down = t + det.confirm_interval * u32::from(det.confirm_probes - 1) + det.confirm_timeout;
    assert_eq!(ev, [(t, NeighbourState::Suspected), (down, NeighbourState::Down)]);
}

/// The boot hold-down (3 hellos by default) keeps a fresh process from routing until its
/// neighbours have flushed routes through its previous incarnation. A node that never ran,
/// or whose previous run ended longer ago than routes through it can live, has none to
/// wait for: it routes as soon as it hears its neighbour.
#[test]
fn the_boot_hold_down_is_lifted_when_no_previous_run_can_be_remembered() {
    let first_route_ms = |previous: Option<Option<Duration>>| {
        let mut p = Pair::new(ProtocolConfig::default());
        if let Some(gone_for) = previous {
            p.nodes[0].set_previous_run(gone_for);
        }
        (1..=100)
            .find(|&step| {
                p.run_until(Instant::ZERO + Duration::from_millis(step * 10), &mut no_drop());
                p.nodes[0].route(NodeId(1)).is_some()
            })
            .map(|steps| steps * 10)
            .expect("a route within a second")
    };
    let held = first_route_ms(None);
    assert!(held >= 300, "routed after {held} ms, inside the 300 ms hold-down");
    assert_eq!(first_route_ms(Some(Some(Duration::from_secs(2)))), held, "a run 2 s ago may still be routed through");
    // Routes expire 35 s after their last update (3.5 update intervals), swept every 10 s.
    assert_eq!(first_route_ms(Some(Some(Duration::from_secs(44)))), held);
    let forgotten = first_route_ms(Some(Some(Duration::from_secs(45))));
    let never = first_route_ms(Some(None));
    assert!(never < 300 && forgotten == never, "never ran: {never} ms, gone 45 s: {forgotten} ms");
}

/// Node 1 keeps sending but node 0's host loses its frames before the node reads them (a
/// full socket buffer, a firewall rule), from `freeze` on. Every 10 ms node 0 gets its
/// kernel's counts for node 1's address: `passed` grows with every frame node 1 sends and,
/// with `host_drops`, `handed` stays where it was. Returns node 0's neighbour events after
/// `freeze`, and `freeze`.
fn silence_with_kernel_counts(host_drops: bool) -> (Vec<(Instant, NeighbourState)>, Instant, Pair) {
    let mut p = Pair::new(ProtocolConfig::default());
    p.run_until(secs(3.0), &mut no_drop());
    let (freeze, at_freeze) = (p.now, p.sent[1]);
    let ip = PeerAddr::synthetic(NodeId(1)).ip;
    let mut lost = |from: usize, _: &[u8]| from == 1;
    while p.now < freeze + Duration::from_secs(1) {
        let handed = if host_drops { at_freeze } else { p.sent[1] };
        p.nodes[0].handle_kernel_counts(p.now, ip, KernelCounts { passed: p.sent[1], handed });
        p.drain(0, &mut lost);
        let step = p.now + Duration::from_millis(10);
        p.run_until(step, &mut lost);
    }
    let ev = p.neighbour_events(0).into_iter().filter(|e| e.0 > freeze).collect();
    (ev, freeze, p)
}

/// Frames the kernel received but the node never read put off the suspicion (the
/// neighbour is sending; this host is losing them), for at most `KERNEL_GRACE_HELLOS`
/// hello intervals after the last frame the node heard; then the usual confirmation runs,
/// and pongs the host also loses do not refute it.
#[test]
fn frames_lost_on_this_host_put_off_a_suspicion_for_a_bounded_time() {
    let (ev, freeze, p) = silence_with_kernel_counts(true);
    let suspected = ev.iter().find(|e| e.1 == NeighbourState::Suspected).expect("suspected at last").0;
    let down = ev.iter().find(|e| e.1 == NeighbourState::Down).expect("declared down at last").0;
    let grace = Duration::from_millis(100) * KERNEL_GRACE_HELLOS;
    // The last hello heard came up to one interval before `freeze`; without the counts the
    // suspicion comes within 240 ms of `freeze` (the next test).
    let put_off = grace - Duration::from_millis(105);
    assert!(suspected - freeze >= put_off, "suspected after {:?}: not put off", suspected - freeze);
    assert!(suspected - freeze <= grace, "suspected after {:?}: put off past the grace", suspected - freeze);
    assert_eq!(down - suspected, Duration::from_millis(95), "the confirmation is not shortened or stretched");
    let stats = p.nodes[0].stats();
    assert!(stats.kernel_deferrals >= 1, "no deferral counted");
    assert!(stats.kernel_unhandled >= 4, "{} frames counted as lost on this host", stats.kernel_unhandled);
}

/// The negative space: counts that show every passed frame handed (the neighbour is
/// silent, not this host) change nothing, and neither do counts that start over.
#[test]
fn kernel_counts_without_local_loss_do_not_delay_detection() {
    let (ev, freeze, p) = silence_with_kernel_counts(false);
    let suspected = ev.iter().find(|e| e.1 == NeighbourState::Suspected).expect("suspected").0;
    assert!(suspected - freeze <= Duration::from_millis(240), "suspected after {:?}", suspected - freeze);
    assert_eq!(p.nodes[0].stats().kernel_unhandled, 0);
    assert_eq!(p.nodes[0].stats().kernel_deferrals, 0);

    let mut p = Pair::new(ProtocolConfig::default());
    p.run_until(secs(3.0), &mut no_drop());
    let ip = PeerAddr::synthetic(NodeId(1)).ip;
    p.nodes[0].handle_kernel_counts(p.now, ip, KernelCounts { passed: 1000, handed: 10 });
    p.nodes[0].handle_kernel_counts(p.now, ip, KernelCounts { passed: 5, handed: 5 });
    p.nodes[0].handle_kernel_counts(p.now, ip, KernelCounts { passed: 5, handed: 5 });
    assert_eq!(p.nodes[0].stats().kernel_unhandled, 0, "a restarted count is a new baseline, not lost frames");
}

/// A destination new to a node is news nobody downstream has: it is passed on within the
/// urgent batching delay (2 ms), not the 20 ms that batch improvements. At 20 ms a hop, a
/// node starting at the edge of a 12-hop mesh was reachable from the far side only about
/// 240 ms later.
#[test]
fn a_destination_new_to_the_mesh_is_passed_on_at_once() {
    let mut p = Pair::new(ProtocolConfig::default());
    // When node 1 sends an update for node 0 (its re-advertisement of the route it learnt).
    let mut advertised: Option<Instant> = None;
    let sent = std::cell::Cell::new(false);
    let mut watch = |from: usize, bytes: &[u8]| {
        let update_for_0 = |body: &[u8]| TlvIter::new(body).any(|t| matches!(t, Ok(Tlv::Update { dest: NodeId(0), .. })));
        if from == 1 && wire::decode_frame(bytes).is_ok_and(|(_, body)| update_for_0(body)) {
            sent.set(true);
        }
        false
    };
    while p.now < secs(1.0) && advertised.is_none() {
        let step = p.now + Duration::from_micros(100);
        p.run_until(step, &mut watch);
        if sent.get() {
            advertised = Some(p.now);
        }
    }
    let learnt = p
        .events
        .iter()
        .find_map(|(t, i, e)| matches!(e, Event::Route { dest: NodeId(0), next_hop: Some(_), .. }).then_some(*t).filter(|_| *i == 1))
        .expect("node 1 learnt a route to node 0");
    let advertised = advertised.expect("node 1 passed the route on");
    assert!(advertised - learnt <= Duration::from_micros(2100), "passed on {:?} after it was learnt", advertised - learnt);
}

/// A newer seqno for a node is relayed at once by whoever holds a route to it; one for an
/// area only along the path of a request that asked for it (as babeld does for every route),
/// not by every node of the mesh: at 10,000 nodes each area seqno relayed by all was a
/// triggered update on every link, dozens of them per crash.
#[test]
fn a_newer_seqno_is_relayed_at_once_for_a_node_and_only_when_asked_for_an_area() {
    // Periodic dumps (which carry the newest seqnos too) come at 30 s at the earliest, long
    // after what is watched here.
    let cfg = ProtocolConfig {
        area_starts: Some(AreaPlan::try_from(vec![0, 1]).unwrap()),
        update_interval: Duration::from_secs(60),
        ..ProtocolConfig::default()
    };
    let mut p = Pair::new(cfg);
    // The seqnos node 0 originates, for itself and for its area (area 0; node 1 is area 1).
    let mut seqnos = std::collections::BTreeMap::new();
    let updates = |bytes: &[u8]| -> Vec<(NodeId, u16)> {
        let Ok((_, body)) = wire::decode_frame(bytes) else { return Vec::new() };
        TlvIter::new(body).filter_map(|t| if let Ok(Tlv::Update { dest, seqno, .. }) = t { Some((dest, seqno)) } else { None }).collect()
    };
    p.run_until(secs(3.0), &mut |from, bytes| {
        if from == 0 {
            seqnos.extend(updates(bytes));
        }
        false
    });
    for (dest, relayed) in [(NodeId(0), true), (area_id(0), false)] {
        let newer = seqnos[&dest].wrapping_add(1);
        // A request from far away reaches node 0 through node 1, which only passed it on.
        let mut frame = Vec::new();
        ControlWriter::start(&mut frame, NodeId(1));
        ControlWriter::push(&mut frame, &Tlv::SeqnoRequest { dest, seqno: newer, hop_count: 10, origin: NodeId(7) });
        ControlWriter::finish(&mut frame);
        let (mut answered, mut passed_on) = (false, false);
        let mut watch = |from: usize, bytes: &[u8]| {
            let has_newer = updates(bytes).contains(&(dest, newer));
            answered |= from == 0 && has_newer;
            passed_on |= from == 1 && has_newer;
            false
        };
        p.nodes[0].handle_datagram(p.now, IfIndex(0), PeerAddr::synthetic(NodeId(1)), &frame);
        p.drain(0, &mut watch);
        let until = p.now + Duration::from_millis(100);
        p.run_until(until, &mut watch);
        assert!(answered, "node 0 did not issue seqno {newer} for {dest:?}");
        assert_eq!(passed_on, relayed, "node 1 relayed the newer seqno of {dest:?}: {passed_on}");
    }
}

/// One lost hello is ordinary loss, not a failure.
#[test]
fn a_single_lost_hello_is_not_a_suspicion() {
    let mut p = Pair::new(ProtocolConfig::default());
    p.run_until(secs(3.0), &mut no_drop());
    let mut dropped = false;
    // Drop the first frame node 1 sends after 3 s: its next hello.
    let mut drop_one = |from: usize, _: &[u8]| {
        if from == 1 && !dropped {
            dropped = true;
            return true;
        }
        false
    };
    p.run_until(secs(6.0), &mut drop_one);
    assert!(dropped);
    let bad: Vec<_> = p.neighbour_events(0).into_iter().filter(|e| e.1 != NeighbourState::Up).collect();
    assert!(bad.is_empty(), "one lost hello caused {bad:?}");
}

/// A node answers a newcomer on its link at once with a hello, which its other neighbours
/// hear a few ms after its previous one; such answers are not its rhythm. Counted as gaps
/// right after node 0 met node 1, they made the mean a few ms and, with a sensitive
/// threshold, the deadline fell before node 1's first regular hello.
#[test]
fn answers_to_newcomers_do_not_set_the_rhythm() {
    let mut cfg = ProtocolConfig::default();
    cfg.detector.phi_suspect = 4.0;
    let mut p = Pair::new(cfg.clone());
    while p.neighbour_events(0).is_empty() {
        let next = p.now + Duration::from_millis(1);
        p.run_until(next, &mut no_drop());
    }
    // Newcomers greet node 1, 1 ms apart; each makes it answer on the shared link.
    for id in [10, 11, 12] {
        let mut newcomer = Node::new(NodeId(id), cfg.clone(), [id as u8; 32], p.now).expect("valid config");
        newcomer.add_interface(p.now);
        let mut hello = Vec::new();
        newcomer.poll_transmit(&mut hello).expect("a newcomer greets at once");
        p.nodes[1].handle_datagram(p.now, IfIndex(0), PeerAddr::synthetic(NodeId(id)), &hello);
        p.drain(1, &mut no_drop());
        let next = p.now + Duration::from_millis(1);
        p.run_until(next, &mut no_drop());
    }
    p.run_until(secs(3.0), &mut no_drop());
    let ev = p.neighbour_events(0);
    assert!(ev.iter().all(|e| e.1 == NeighbourState::Up), "node 0 on a clean link: {ev:?}");
}

/// A freeze long enough to be suspected, ended while the confirmation pings are still
/// going out, is refuted by the pong to the last ping: suspected, then up, never down.
#[test]
fn a_short_freeze_is_suspected_and_refuted() {
    let mut p = Pair::new(ProtocolConfig::default());
    p.run_until(secs(3.0), &mut no_drop());
    let freeze = p.now;
    // Node 1's frames are lost until node 0 suspects it, and 15 ms more: the first two
    // pings' pongs are lost, the third (sent 20 ms after suspicion) is answered.
    let mut frozen = |from: usize, _: &[u8]| -> bool { from == 1 };
    let suspected = loop {
        let step = p.now + Duration::from_millis(1);
        p.run_until(step, &mut frozen);
        if let Some(e) = p.neighbour_events(0).into_iter().find(|e| e.0 > freeze) {
            assert_eq!(e.1, NeighbourState::Suspected, "first state change after the freeze");
            break e.0;
        }
        assert!(p.now < freeze + Duration::from_secs(1), "never suspected");
    };
    p.run_until(suspected + Duration::from_millis(15), &mut frozen);
    p.run_until(secs(5.0), &mut no_drop());
    let ev: Vec<_> = p.neighbour_events(0).into_iter().filter(|e| e.0 > freeze).collect();
    assert!(!ev.iter().any(|e| e.1 == NeighbourState::Down), "refuted, not declared down: {ev:?}");
    assert_eq!(ev.last().map(|e| e.1), Some(NeighbourState::Up));
}

/// A neighbour that comes back as a new process (new incarnation) is seen to have
/// restarted at its first hello, before any timeout could tell.
#[test]
fn a_restart_is_detected_by_the_new_incarnation() {
    let cfg = ProtocolConfig::default();
    let mut p = Pair::new(cfg.clone());
    p.run_until(secs(3.0), &mut no_drop());
    let restart = p.now;
    p.nodes[1] = Node::new(NodeId(1), cfg, [99; 32], restart).expect("valid config");
    p.nodes[1].add_interface(restart);
    p.drain(1, &mut no_drop());
    p.run_until(restart + Duration::from_millis(50), &mut no_drop());
    let restarted = p.events.iter().any(|(t, i, e)| {
        *i == 0 && *t >= restart && matches!(e, Event::Incident { incident: Incident::NeighbourRestarted { .. }, .. })
    });
    assert!(restarted, "no restart incident within 50 ms");
    p.run_until(restart + Duration::from_secs(2), &mut no_drop());
    assert_eq!(p.neighbour_events(0).last().map(|e| e.1), Some(NeighbourState::Up));
    assert!(p.nodes[0].route(NodeId(1)).is_some(), "routes come back after the restart");
}

#[test]
fn probes_report_delivery_and_loss() {
    let mut p = Pair::new(ProtocolConfig::default());
    p.run_until(secs(2.0), &mut no_drop());
    p.nodes[0].handle_command(p.now, Command::Probe { dst: NodeId(1), id: 7 }).expect("queued");
    p.drain(0, &mut no_drop());
    p.run_until(secs(2.5), &mut no_drop());
    let delivered = p.events.iter().find_map(|(_, i, e)| match e {
        Event::Probe { id: 7, outcome, .. } if *i == 0 => Some(*outcome),
        _ => None,
    });
    assert_eq!(delivered, Some(ProbeOutcome::Delivered { rtt: LATENCY * 2 }));

    // With every data frame dropped, the probe times out after `probe_timeout`.
    let mut drop_data = |_: usize, bytes: &[u8]| bytes.get(3) == Some(&2);
    let sent = p.now;
    p.nodes[0].handle_command(p.now, Command::Probe { dst: NodeId(1), id: 8 }).expect("queued");
    p.drain(0, &mut drop_data);
    p.run_until(sent + Duration::from_millis(1500), &mut drop_data);
    let lost = p.events.iter().find_map(|(t, i, e)| match e {
        Event::Probe { id: 8, outcome, .. } if *i == 0 => Some((*t, *outcome)),
        _ => None,
    });
    assert_eq!(lost, Some((sent + Duration::from_secs(1), ProbeOutcome::Lost)));

    // To a destination nobody knows, the probe fails at once.
    p.nodes[0].handle_command(p.now, Command::Probe { dst: NodeId(42), id: 9 }).expect("answered");
    p.drain(0, &mut no_drop());
    assert!(p.events.iter().any(|(_, _, e)| matches!(e, Event::Probe { id: 9, outcome: ProbeOutcome::NoRoute, .. })));
}

/// Application payloads travel hop by hop and come out of `poll_delivery`.
#[test]
fn application_data_is_delivered() {
    let mut p = Pair::new(ProtocolConfig::default());
    p.run_until(secs(2.0), &mut no_drop());
    p.nodes[0].handle_command(p.now, Command::Send { dst: NodeId(1), payload: b"hello mesh" }).expect("routed");
    p.drain(0, &mut no_drop());
    p.run_until(secs(2.1), &mut no_drop());
    let mut buf = Vec::new();
    assert_eq!(p.nodes[1].poll_delivery(&mut buf), Some(NodeId(0)));
    assert_eq!(buf, b"hello mesh");
    let too_big = vec![0u8; 2000];
    assert!(p.nodes[0].handle_command(p.now, Command::Send { dst: NodeId(1), payload: &too_big }).is_err());
}

/// The contract: time never runs backwards inside a node, and after handling a timeout
/// the next timeout is in the future (a driver that waits for it makes progress).
#[test]
fn timeouts_always_move_forward() {
    let mut p = Pair::new(ProtocolConfig::default());
    let mut now = Instant::ZERO;
    for _ in 0..2000 {
        let t = p.nodes[0].poll_timeout();
        assert!(t >= now, "timeout {t} went back from {now}");
        now = t;
        p.nodes[0].handle_timeout(now);
        p.drain(0, &mut no_drop());
        assert!(p.nodes[0].poll_timeout() > now, "a handled timeout must not be due again at {now}");
    }
    // A clock that steps back is held still, not followed.
    p.nodes[0].handle_timeout(Instant::ZERO);
    assert!(p.nodes[0].poll_timeout() > now);
}

/// What a node said after one input: its frames and events, in order.
fn said(node: &mut Node) -> (Vec<(Transmit, Vec<u8>)>, Vec<Event>) {
    let mut frames = Vec::new();
    let mut buf = Vec::new();
    while let Some(tx) = node.poll_transmit(&mut buf) {
        frames.push((tx, buf.clone()));
    }
    (frames, std::iter::from_fn(|| node.poll_event()).collect())
}

/// A driver may lend a node the buffers it writes its outputs into, for each input (as
/// the simulator does): the node then says exactly what an identical node says with its
/// own, and never takes them while output of its own waits.
#[test]
fn lent_output_buffers_change_nothing_and_lose_nothing() {
    let mk = |i: u32| Node::new(NodeId(i), ProtocolConfig::default(), [i as u8 + 1; 32], Instant::ZERO).expect("valid config");
    // `lender` and `own` are the same node 0, fed the same inputs; only `lender` borrows.
    let (mut lender, mut own, mut peer) = (mk(0), mk(0), mk(1));
    let mut lent = OutputBuffers::default();
    for node in [&mut lender, &mut own, &mut peer] {
        node.add_interface(Instant::ZERO);
    }
    assert!(!lender.exchange_buffers(&mut lent), "frames are waiting: the node must keep its buffers");
    // Frames on the link, one way each: (arrival, bytes).
    let (mut to_zero, mut to_peer) = (Vec::new(), Vec::new());
    let mut compared = 0;
    let mut input = |now: Instant, lender: &mut Node, own: &mut Node, handle: &dyn Fn(&mut Node), to_peer: &mut Vec<(Instant, Vec<u8>)>| {
        let borrowed = lender.exchange_buffers(&mut lent);
        handle(lender);
        handle(own);
        let said_lent = said(lender);
        assert!(borrowed, "a drained node lends out its buffers");
        assert!(lender.exchange_buffers(&mut lent), "and takes its own back once drained");
        assert_eq!(said_lent, said(own), "lending changed what node 0 said at {now}");
        to_peer.extend(said_lent.0.into_iter().map(|(_, bytes)| (now + LATENCY, bytes)));
        compared += 1;
    };
    let greeting = said(&mut lender);
    assert_eq!(greeting, said(&mut own));
    to_peer.extend(greeting.0.into_iter().map(|(_, b)| (Instant::ZERO + LATENCY, b)));
    to_zero.extend(said(&mut peer).0.into_iter().map(|(_, b)| (Instant::ZERO + LATENCY, b)));
    let end = secs(3.0);
    let zero = PeerAddr::synthetic(NodeId(0));
    let one = PeerAddr::synthetic(NodeId(1));
    loop {
        let arrivals = to_zero.iter().chain(&to_peer).map(|f| f.0);
        assert_eq!(lender.poll_timeout(), own.poll_timeout());
        let now = arrivals.chain([lender.poll_timeout(), peer.poll_timeout()]).min().expect("timers always run");
        if now > end {
            break;
        }
        if let Some(k) = to_zero.iter().position(|f| f.0 == now) {
            let (_, bytes) = to_zero.remove(k);
            input(now, &mut lender, &mut own, &|n| n.handle_datagram(now, IfIndex(0), one, &bytes), &mut to_peer);
        } else if let Some(k) = to_peer.iter().position(|f| f.0 == now) {
            let (_, bytes) = to_peer.remove(k);
            peer.handle_datagram(now, IfIndex(0), zero, &bytes);
            to_zero.extend(said(&mut peer).0.into_iter().map(|(_, b)| (now + LATENCY, b)));
        } else if lender.poll_timeout() == now {
            input(now, &mut lender, &mut own, &|n| n.handle_timeout(now), &mut to_peer);
        } else {
            peer.handle_timeout(now);
            to_zero.extend(said(&mut peer).0.into_iter().map(|(_, b)| (now + LATENCY, b)));
        }
    }
    assert!(compared > 50, "only {compared} inputs compared");
    assert_eq!(lender.route(NodeId(1)).map(|r| r.next_hop), Some(NodeId(1)), "the link came up with lent buffers");
}

#[test]
fn invalid_configuration_is_refused() {
    let cfg = ProtocolConfig { hello_interval: Duration::ZERO, ..ProtocolConfig::default() };
    let err = Node::new(NodeId(1), cfg, [0; 32], Instant::ZERO).expect_err("refused");
    assert!(err.to_string().contains("hello_interval"), "{err}");
}
