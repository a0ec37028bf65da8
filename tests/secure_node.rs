//! Link security inside the node: two nodes with identities admit each other through the
//! handshake, seal everything after it, and drop what is unauthenticated, forged or replayed
//! without acting on it.

mod pair;

use pair::{Anchored, LATENCY, Pair, no_drop, secs};
use std::time::Duration;
use x0tta6bl4::config::ProtocolConfig;
use x0tta6bl4::ids::{IfIndex, NodeId, PeerAddr};
use x0tta6bl4::node::{Command, Event, Incident, Misbehaviour, NeighbourState, Node, ProbeOutcome};
use x0tta6bl4::secure::Refusal;
use x0tta6bl4::time::Instant;
use x0tta6bl4::wire::{self, FrameKind};

/// Certificates valid for a day of the mesh's clock.
const DAY_S: u64 = 86_400;

fn secure_pair(cfg: ProtocolConfig) -> (Pair, Anchored) {
    let mesh = Anchored::new();
    let mk = |id: u32| Node::new_secure(cfg.clone(), mesh.node(id, DAY_S), [id as u8; 32], Instant::ZERO).expect("valid");
    (Pair::with_nodes([mk(1), mk(2)]), mesh)
}

/// On a secured mesh every frame is sealed to each neighbour and sent to it alone, so the
/// first hello after a neighbour's process died comes back as a port unreachable: it is
/// down within one hello interval and two round trips, with no data flowing. A report
/// whose quoted frame fails to authenticate is ignored.
#[test]
fn a_dead_process_is_found_by_its_host_answering_our_sealed_hellos() {
    let (mut p, _) = secure_pair(ProtocolConfig::default());
    p.hosts_answer = true;
    p.run_until(secs(3.0), &mut no_drop());
    let mut ours = None;
    p.run_until(secs(3.2), &mut |from, f: &[u8]| {
        if from == 0 && kind(f) == FrameKind::Sealed {
            ours = Some(f.to_vec());
        }
        false
    });
    let mut forged = ours.expect("node 0 sealed hellos");
    *forged.last_mut().expect("a tag") ^= 1;
    let peer = PeerAddr::synthetic(p.nodes[1].id());
    p.nodes[0].handle_unreachable(p.now, IfIndex(0), peer, &forged);
    p.drain(0, &mut no_drop());
    assert_eq!(p.nodes[0].stats().unreachable_ignored, 1, "a quote that does not authenticate proves nothing");

    let crash = p.now;
    p.alive[1] = false;
    p.run_until(crash + Duration::from_millis(200), &mut no_drop());
    let ev: Vec<_> = p.neighbour_events(0).into_iter().filter(|e| e.0 > crash).collect();
    assert_eq!(ev.iter().map(|e| e.1).collect::<Vec<_>>(), [NeighbourState::Suspected, NeighbourState::Down]);
    assert!(ev[1].0 - crash <= Duration::from_millis(110), "down {:?} after the crash", ev[1].0 - crash);
    assert_eq!(ev[1].0 - ev[0].0, LATENCY * 2, "the first ping's report settles it");
    let s = p.nodes[0].stats();
    assert_eq!((s.unreachable_suspicions, s.unreachable_downs), (1, 1));
}

fn kind(frame: &[u8]) -> FrameKind {
    wire::decode_frame(frame).expect("nodes send well-formed frames").0.kind
}

#[test]
fn anchored_nodes_admit_each_other_and_seal_every_frame_after_the_handshake() {
    let (mut p, _) = secure_pair(ProtocolConfig::default());
    let mut kinds = Vec::new();
    p.run_until(secs(2.0), &mut |_, f: &[u8]| {
        assert!(f.len() <= wire::MAX_FRAME_LEN, "a {} byte frame exceeds the MTU", f.len());
        kinds.push(kind(f));
        false
    });
    for i in 0..2 {
        let peer = p.nodes[1 - i].id();
        assert_eq!(p.neighbour_events(i).first().map(|e| e.1), Some(NeighbourState::Up), "node {i} never saw its neighbour");
        assert_eq!(p.nodes[i].next_hop(peer), Some(peer));
        let admitted: Vec<_> = p.nodes[i].admitted().map(|(_, id, _)| id).collect();
        assert_eq!(admitted, [peer]);
        let s = p.nodes[i].stats();
        assert_eq!(s.handshakes_completed, 1);
        assert_eq!((s.unauthenticated_rx, s.forged_rx, s.replayed_rx, s.decode_errors), (0, 0, 0, 0), "{s:?}");
    }
    assert!(kinds.iter().all(|k| matches!(k, FrameKind::Beacon | FrameKind::Handshake | FrameKind::Sealed)));
    assert!(kinds.contains(&FrameKind::Handshake) && kinds.contains(&FrameKind::Sealed));
    // Nothing in the clear after the handshake but beacons.
    let last_handshake = kinds.iter().rposition(|k| *k == FrameKind::Handshake).expect("a handshake");
    assert!(kinds[last_handshake + 1..].iter().all(|k| *k != FrameKind::Handshake));

    let dst = p.nodes[1].id();
    p.nodes[0].handle_command(p.now, Command::Probe { dst, id: 7 }).expect("routed");
    p.drain(0, &mut no_drop());
    p.run_until(secs(3.0), &mut no_drop());
    let delivered = p.events.iter().any(|(_, i, e)| {
        *i == 0 && matches!(e, Event::Probe { id: 7, outcome: ProbeOutcome::Delivered { .. }, .. })
    });
    assert!(delivered, "a probe crosses the sealed link");
}

#[test]
fn an_identity_from_another_anchor_is_refused_and_counted() {
    let cfg = ProtocolConfig::default();
    let ours = Anchored::new();
    let theirs = Anchored { anchor: x0tta6bl4::pq::SigningKey::generate(&mut pair::rng(201)) };
    let a = Node::new_secure(cfg.clone(), ours.node(1, DAY_S), [1; 32], Instant::ZERO).expect("valid");
    let b = Node::new_secure(cfg, theirs.node(2, DAY_S), [2; 32], Instant::ZERO).expect("valid");
    let mut p = Pair::with_nodes([a, b]);
    p.run_until(secs(5.0), &mut no_drop());
    assert!(p.events.iter().all(|(_, _, e)| !matches!(e, Event::Neighbour { .. })), "nobody comes up");
    // Node 1 (the lower id) initiates; node 2 refuses its certificate and never answers,
    // so node 1's attempts run out and are counted as failed.
    let (initiator, responder) = (p.nodes[0].stats(), p.nodes[1].stats());
    assert!(responder.identities_refused >= 1, "{responder:?}");
    assert_eq!(responder.last_refusal, Some(Refusal::BadCertificate));
    assert!(initiator.handshakes_failed >= 1, "{initiator:?}");
    for i in 0..2 {
        assert_eq!(p.nodes[i].stats().handshakes_completed, 0);
        assert_eq!(p.nodes[i].admitted().count(), 0);
    }
}

#[test]
fn an_expired_certificate_is_refused() {
    let cfg = ProtocolConfig::default();
    let mesh = Anchored::new();
    // Node 1's clock reads second 100 of the mesh's time; node 2's certificate expired at 50.
    let mut late = mesh.node(1, DAY_S);
    late.clock_origin_s = 100;
    let a = Node::new_secure(cfg.clone(), late, [1; 32], Instant::ZERO).expect("valid");
    let b = Node::new_secure(cfg, mesh.node(2, 50), [2; 32], Instant::ZERO).expect("valid");
    let mut p = Pair::with_nodes([a, b]);
    p.run_until(secs(3.0), &mut no_drop());
    let s = p.nodes[0].stats();
    assert!(matches!(s.last_refusal, Some(Refusal::Expired { not_after_s: 50, now_s: 100.. })), "{s:?}");
    assert_eq!(p.nodes[0].admitted().count(), 0);
}

#[test]
fn admission_survives_heavy_loss_by_resending_handshake_messages() {
    let mut cfg = ProtocolConfig::default();
    cfg.security.handshake_timeout = Duration::from_millis(200);
    cfg.security.handshake_retries = 20;
    let (mut p, _) = secure_pair(cfg);
    // A third of all frames is lost: a seven-fragment Reply crosses whole one time in 17.
    let mut loss = pair::rng(77);
    let mut handshake_frames = 0;
    p.run_until(secs(30.0), &mut |_, f: &[u8]| {
        handshake_frames += usize::from(kind(f) == FrameKind::Handshake);
        let mut b = [0u8; 1];
        loss.fill(&mut b);
        b[0] < 85
    });
    for i in 0..2 {
        assert_eq!(p.nodes[i].admitted().count(), 1, "node {i}: {:?}", p.nodes[i].stats());
    }
    // A clean handshake is 5 + 7 + 3 fragments.
    assert!(handshake_frames > 15, "resends were needed: {handshake_frames} fragments");
}

/// Feeds node 1 a frame as if from node 0.
fn inject(p: &mut Pair, frame: &[u8]) {
    let from = PeerAddr::synthetic(p.nodes[0].id());
    p.nodes[1].handle_datagram(p.now, IfIndex(0), from, frame);
    p.drain(1, &mut no_drop());
}

#[test]
fn replayed_forged_and_clear_frames_are_counted_and_never_processed() {
    let (mut p, _) = secure_pair(ProtocolConfig::default());
    let mut sealed = Vec::new();
    p.run_until(secs(2.0), &mut |from, f: &[u8]| {
        if from == 0 && kind(f) == FrameKind::Sealed {
            sealed.push(f.to_vec());
        }
        false
    });
    let before = p.nodes[1].stats().clone();
    // One from the middle: the last ones may still be in flight.
    let captured = sealed[sealed.len() / 2].clone();

    inject(&mut p, &captured);
    assert_eq!(p.nodes[1].stats().replayed_rx, before.replayed_rx + 1, "{before:?}\n{:?}", p.nodes[1].stats());

    // A fresh counter (else the replay window refuses it first) and a bit flipped in the
    // ciphertext, with the checksum fixed up so only the AEAD can tell.
    let mut forged = captured.clone();
    forged[wire::HEADER_LEN + 1..wire::HEADER_LEN + 9].copy_from_slice(&1_000_000u64.to_be_bytes());
    forged[wire::HEADER_LEN + wire::SEALED_PREFIX_LEN + 3] ^= 0x40;
    let n = forged.len() - wire::TRAILER_LEN;
    let crc = crc32fast::hash(&forged[..n]);
    forged[n..].copy_from_slice(&crc.to_be_bytes());
    inject(&mut p, &forged);
    assert_eq!(p.nodes[1].stats().forged_rx, before.forged_rx + 1);

    // A clear-text hello claiming to be node 0, from a node without an identity.
    let mut liar = Node::new(p.nodes[0].id(), ProtocolConfig::default(), [9; 32], p.now).expect("valid");
    liar.add_interface(p.now);
    let mut buf = Vec::new();
    while liar.poll_transmit(&mut buf).is_some() {
        inject(&mut p, &buf);
    }
    let after = p.nodes[1].stats();
    assert!(after.unauthenticated_rx > before.unauthenticated_rx, "{after:?}");
    assert_eq!(after.updates_rx, before.updates_rx, "no update from an unsealed frame was processed");
    assert!(p.nodes[1].next_hop(p.nodes[0].id()).is_some(), "the real neighbour is still up");
}

#[test]
fn a_restarted_peer_is_admitted_again_with_a_new_session() {
    let (mut p, mesh) = secure_pair(ProtocolConfig::default());
    p.run_until(secs(2.0), &mut no_drop());
    let restart = p.now;
    p.nodes[1] = Node::new_secure(ProtocolConfig::default(), mesh.node(2, DAY_S), [22; 32], restart).expect("valid");
    p.nodes[1].add_interface(restart);
    p.drain(1, &mut no_drop());
    p.run_until(secs(5.0), &mut no_drop());
    assert_eq!(p.nodes[0].stats().handshakes_completed, 2, "{:?}", p.nodes[0].stats());
    assert_eq!(p.nodes[1].admitted().count(), 1);
    let peer = p.nodes[1].id();
    let up_again = p.events.iter().any(|(t, i, e)| {
        *i == 0 && *t > restart && matches!(e, Event::Neighbour { peer: q, state: NeighbourState::Up, .. } if *q == peer)
    });
    assert!(up_again, "node 1 is a neighbour again after its restart");
}

#[test]
fn sessions_rekey_under_traffic_without_losing_a_frame() {
    let mut cfg = ProtocolConfig::default();
    cfg.security.rekey_frames = 8;
    let (mut p, _) = secure_pair(cfg);
    p.run_until(secs(10.0), &mut no_drop());
    for i in 0..2 {
        let s = p.nodes[i].stats();
        assert_eq!((s.forged_rx, s.replayed_rx, s.unauthenticated_rx), (0, 0, 0), "node {i}: {s:?}");
        assert!(p.events.iter().all(|(_, _, e)| !matches!(e, Event::Neighbour { state: NeighbourState::Down, .. })));
        assert_eq!(p.nodes[i].next_hop(p.nodes[1 - i].id()), Some(p.nodes[1 - i].id()));
    }
}

#[test]
fn sealed_nodes_ignore_and_count_a_node_without_identity() {
    let mesh = Anchored::new();
    let a = Node::new_secure(ProtocolConfig::default(), mesh.node(1, DAY_S), [1; 32], Instant::ZERO).expect("valid");
    let b = Node::new(NodeId(2), ProtocolConfig::default(), [2; 32], Instant::ZERO).expect("valid");
    let mut p = Pair::with_nodes([a, b]);
    p.run_until(secs(2.0), &mut no_drop());
    assert!(p.nodes[0].stats().unauthenticated_rx > 0);
    assert!(p.nodes[1].stats().security_mismatch_rx > 0);
    assert!(p.events.iter().all(|(_, _, e)| !matches!(e, Event::Neighbour { .. })));
}

/// A neighbour at the same address keeps its session while garbage sprays in from a second
/// address on the same interface; the sprayer's address is isolated once it passes
/// `security.malformed_max`, and from then on its frames are dropped unread.
#[test]
fn a_malformed_flood_isolates_the_address_it_comes_from_and_nothing_else() {
    let cfg = ProtocolConfig::default();
    let max = cfg.security.malformed_max;
    let (mut p, _) = secure_pair(cfg);
    p.run_until(secs(2.0), &mut no_drop());
    let attacker = PeerAddr { ip: [0xfe; 16], port: 9 };
    let garbage = [0x5au8; 40];
    let mut t = p.now;
    for _ in 0..max + 50 {
        t += Duration::from_millis(1);
        p.nodes[0].handle_datagram(t, IfIndex(0), attacker, &garbage);
    }
    let s = p.nodes[0].stats();
    assert_eq!(s.decode_errors, u64::from(max), "frames past the threshold are not even decoded");
    assert_eq!((s.isolations, s.blocked_rx), (1, 50), "{s:?}");
    let isolated: Vec<_> = std::iter::from_fn(|| p.nodes[0].poll_event())
        .filter_map(|e| match e {
            Event::Incident { incident: Incident::Isolated { addr, misbehaviour, .. }, .. } => Some((addr, misbehaviour)),
            _ => None,
        })
        .collect();
    assert_eq!(isolated, [(attacker, Misbehaviour::MalformedFlood)]);
    p.run_until(secs(4.0), &mut no_drop());
    let peer = p.nodes[1].id();
    assert_eq!(p.nodes[0].next_hop(peer), Some(peer), "the honest neighbour was cut off");
    assert!(p.neighbour_events(0).iter().all(|e| e.1 == NeighbourState::Up), "{:?}", p.neighbour_events(0));
}
