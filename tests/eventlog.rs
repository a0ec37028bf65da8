//! Event records (what x0-node streams) read back into exactly the events they came from,
//! and a record that cannot be an event says which field is wrong.

use std::time::Duration;
use x0tta6bl4::eventlog::{Detail, EventRecord, Kind, RecordError};
use x0tta6bl4::ids::{IfIndex, NodeId, PeerAddr};
use x0tta6bl4::metrics::TimedEvent;
use x0tta6bl4::node::{Event, Incident, Misbehaviour, NeighbourState, ProbeOutcome};
use x0tta6bl4::time::Instant;

#[test]
fn every_kind_of_event_round_trips_through_json() {
    let at = Instant::from_nanos(1_234_567);
    let (n, i) = (NodeId, IfIndex);
    let events = [
        Event::Neighbour { at, iface: i(2), peer: n(7), state: NeighbourState::Up },
        Event::Neighbour { at, iface: i(0), peer: n(7), state: NeighbourState::Suspected },
        Event::Neighbour { at, iface: i(0), peer: n(7), state: NeighbourState::Down },
        Event::Route { at, dest: n(9), next_hop: Some(n(3)), previous: None, metric: 512 },
        Event::Route { at, dest: n(9), next_hop: None, previous: Some(n(3)), metric: u16::MAX },
        Event::Probe { at, id: 1 << 40, dst: n(4), outcome: ProbeOutcome::Delivered { rtt: Duration::from_micros(830) } },
        Event::Probe { at, id: 5, dst: n(4), outcome: ProbeOutcome::Lost },
        Event::Probe { at, id: 6, dst: n(4), outcome: ProbeOutcome::NoRoute },
        Event::Incident { at, incident: Incident::Starved { dest: n(11) } },
        Event::Incident { at, incident: Incident::NeighbourRestarted { iface: i(1), peer: n(12) } },
        Event::Incident { at, incident: Incident::TtlExpired { src: n(1), dst: n(2) } },
        Event::Incident { at, incident: Incident::Isolated { iface: i(3), addr: fe80(0x21), misbehaviour: Misbehaviour::Impersonation } },
        Event::Incident { at, incident: Incident::Attack { iface: i(0), addr: fe80(0x22), misbehaviour: Misbehaviour::Replay } },
        Event::Incident { at, incident: Incident::Isolated { iface: i(1), addr: PeerAddr::synthetic(n(9)), misbehaviour: Misbehaviour::DropsTransit } },
    ];
    for event in events {
        let timed = TimedEvent { t: Instant::from_nanos(1_763_800_000_123_456_789), node: n(42), event };
        let line = serde_json::to_string(&EventRecord::from(&timed)).unwrap();
        let back: EventRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(TimedEvent::try_from(&back), Ok(timed), "{line}");
    }
}

fn fe80(last: u8) -> PeerAddr {
    let mut ip = [0u8; 16];
    (ip[0], ip[1], ip[15]) = (0xfe, 0x80, last);
    PeerAddr { ip, port: 6696 }
}

#[test]
fn an_isolation_with_a_bad_address_names_the_field_and_the_form() {
    let line = r#"{"t_ns":1,"node":3,"at_ns":1,"event":"incident","detail":"isolated","iface":0,"addr":"10.0.0.1:5","misbehaviour":"replay"}"#;
    let r: EventRecord = serde_json::from_str(line).unwrap();
    let e = TimedEvent::try_from(&r).unwrap_err();
    assert_eq!(e, RecordError::BadAddr("10.0.0.1:5".into()));
    assert!(e.to_string().contains("expected an IPv6 socket address"), "{e}");
}

#[test]
fn a_record_missing_a_field_names_it() {
    let line = r#"{"t_ns":1,"node":3,"at_ns":1,"event":"neighbour","detail":"down","iface":0}"#;
    let r: EventRecord = serde_json::from_str(line).unwrap();
    assert_eq!(TimedEvent::try_from(&r), Err(RecordError::Missing { kind: Kind::Neighbour, field: "peer" }));
    let line = r#"{"t_ns":1,"node":3,"at_ns":1,"event":"route","detail":"up","dest":4,"metric":1}"#;
    let r: EventRecord = serde_json::from_str(line).unwrap();
    assert!(TimedEvent::try_from(&r).is_ok(), "a route ignores detail");
    let line = r#"{"t_ns":1,"node":3,"at_ns":1,"event":"probe","detail":"down","dest":4,"probe_id":1}"#;
    let r: EventRecord = serde_json::from_str(line).unwrap();
    assert_eq!(TimedEvent::try_from(&r), Err(RecordError::Detail { kind: Kind::Probe, detail: Detail::Down }));
    let err = serde_json::from_str::<EventRecord>(r#"{"t_ns":1,"node":3,"at_ns":1,"event":"gossip"}"#).unwrap_err();
    assert!(err.to_string().contains("unknown variant `gossip`"), "{err}");
}
