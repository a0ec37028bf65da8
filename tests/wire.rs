//! The wire format: every frame round-trips, and no input (truncated, garbled or random)
//! makes the decoder or a node panic; each is a typed error.

mod pair;

use proptest::prelude::*;
use x0tta6bl4::config::ProtocolConfig;
use x0tta6bl4::ids::{IfIndex, NodeId, PeerAddr};
use x0tta6bl4::node::{Lookahead, Node};
use x0tta6bl4::time::Instant;
use x0tta6bl4::wire::{self, ControlWriter, Data, DataClass, DecodeError, FrameKind, Tlv, TlvIter};

fn tlv() -> impl Strategy<Value = Tlv> {
    prop_oneof![
        (any::<u16>(), any::<u16>(), any::<u32>(), any::<u32>()).prop_map(|(seqno, interval_ms, incarnation, timestamp_us)| {
            Tlv::Hello { seqno, interval_ms, incarnation, timestamp_us }
        }),
        (any::<u32>(), any::<u32>(), any::<u16>(), any::<u32>(), any::<u32>()).prop_map(|(a, inc, rxcost, echo, hold)| {
            Tlv::Ihu { addressee: NodeId(a), addressee_incarnation: inc, rxcost, echo_timestamp_us: echo, hold_us: hold }
        }),
        (any::<u32>(), any::<u16>(), any::<u16>(), any::<u16>())
            .prop_map(|(d, seqno, metric, interval_ms)| Tlv::Update { dest: NodeId(d), seqno, metric, interval_ms }),
        any::<u32>().prop_map(|d| Tlv::RouteRequest { dest: NodeId(d) }),
        Just(Tlv::WildcardRequest),
        (any::<u32>(), any::<u16>(), any::<u8>(), any::<u32>()).prop_map(|(d, seqno, hop_count, o)| {
            Tlv::SeqnoRequest { dest: NodeId(d), seqno, hop_count, origin: NodeId(o) }
        }),
        any::<u32>().prop_map(|nonce| Tlv::Ping { nonce }),
        any::<u32>().prop_map(|nonce| Tlv::Pong { nonce }),
        (any::<u32>(), any::<u32>()).prop_map(|(d, nonce)| Tlv::Audit { dest: NodeId(d), nonce }),
        (any::<u32>(), any::<u8>(), any::<u8>(), any::<u32>(), any::<u16>()).prop_map(|(nonce, delivered, sent, n, metric)| {
            Tlv::AuditReport { nonce, delivered, sent, next_hop: NodeId(n), metric }
        }),
    ]
}

fn control_frame(sender: u32, tlvs: &[Tlv]) -> Vec<u8> {
    let mut buf = Vec::new();
    ControlWriter::start(&mut buf, NodeId(sender));
    for t in tlvs {
        if !ControlWriter::fits(&buf, t) {
            break;
        }
        ControlWriter::push(&mut buf, t);
    }
    ControlWriter::finish(&mut buf);
    buf
}

fn data_frame(sender: u32, payload: &[u8], ttl: u8, class: u8, id: u64) -> Vec<u8> {
    let classes = [DataClass::App, DataClass::Probe, DataClass::ProbeReply, DataClass::AuditProbe, DataClass::AuditEcho];
    let class = classes[usize::from(class) % classes.len()];
    let d = Data { src: NodeId(sender), dst: NodeId(7), ttl, class, id, origin_ts: id ^ 0xabcd, payload };
    let mut buf = Vec::new();
    wire::encode_data(&mut buf, NodeId(sender), &d).expect("payload fits");
    buf
}

proptest! {
    #[test]
    fn control_frames_round_trip(sender in any::<u32>(), tlvs in prop::collection::vec(tlv(), 0..200)) {
        let buf = control_frame(sender, &tlvs);
        prop_assert!(buf.len() <= wire::MAX_FRAME_LEN);
        let (hdr, body) = wire::decode_frame(&buf).expect("valid frame decodes");
        prop_assert_eq!(hdr.kind, FrameKind::Control);
        prop_assert_eq!(hdr.sender, NodeId(sender));
        prop_assert_eq!(wire::peek_frame(&buf), Some((NodeId(sender), None)));
        let decoded: Vec<Tlv> = TlvIter::new(body).collect::<Result<_, _>>().expect("valid TLVs decode");
        prop_assert_eq!(&decoded[..], &tlvs[..decoded.len()]);
        let updates: Vec<NodeId> = decoded.iter().filter_map(|t| match *t { Tlv::Update { dest, .. } => Some(dest), _ => None }).collect();
        prop_assert_eq!(wire::peek_update_dests(body).collect::<Vec<_>>(), updates);
    }

    #[test]
    fn data_frames_round_trip(sender in any::<u32>(), payload in prop::collection::vec(any::<u8>(), 0..1000),
                              ttl in 1u8.., class in any::<u8>(), id in any::<u64>()) {
        let buf = data_frame(sender, &payload, ttl, class, id);
        let (hdr, body) = wire::decode_frame(&buf).expect("valid frame decodes");
        prop_assert_eq!(hdr.kind, FrameKind::Data);
        let d = wire::decode_data(body).expect("valid data decodes");
        prop_assert_eq!(wire::peek_frame(&buf), Some((NodeId(sender), Some(d.dst))));
        prop_assert_eq!(d.payload, &payload[..]);
        prop_assert_eq!(d.ttl, ttl);
        prop_assert_eq!(d.id, id);
    }

    /// A handshake message of any length it may have is cut into frames within the MTU and
    /// put back together byte for byte, whatever order the fragments arrive in.
    #[test]
    fn handshake_messages_fragment_and_reassemble(
        message in prop::collection::vec(any::<u8>(), 1..=wire::HANDSHAKE_CHUNK_LEN * wire::HANDSHAKE_CHUNKS_MAX),
        rotate in 0usize..8,
    ) {
        let n = wire::Fragment::count(message.len());
        let mut frames: Vec<Vec<u8>> = (0..n).map(|i| {
            let mut f = Vec::new();
            wire::encode_fragment(&mut f, NodeId(5), &message, i);
            f
        }).collect();
        frames.rotate_left(rotate % n);
        let mut out = vec![0u8; message.len()];
        for f in &frames {
            prop_assert!(f.len() <= wire::MAX_FRAME_LEN);
            let (hdr, body) = wire::decode_frame(f).expect("fragment decodes");
            prop_assert_eq!(hdr.kind, FrameKind::Handshake);
            let frag = wire::decode_fragment(body).expect("fragment body decodes");
            prop_assert_eq!(usize::from(frag.message_len), message.len());
            let start = usize::from(frag.index) * wire::HANDSHAKE_CHUNK_LEN;
            out[start..start + frag.chunk.len()].copy_from_slice(frag.chunk);
        }
        prop_assert_eq!(out, message);
    }

    /// Cutting any number of bytes off the end of a valid frame is always detected.
    #[test]
    fn truncated_frames_are_errors(tlvs in prop::collection::vec(tlv(), 1..50), cut in 1usize..400) {
        let buf = control_frame(1, &tlvs);
        let cut = cut.min(buf.len());
        prop_assert!(wire::decode_frame(&buf[..buf.len() - cut]).is_err());
    }

    /// Any single corrupted byte is caught (the CRC covers the whole frame).
    #[test]
    fn garbled_frames_are_errors(tlvs in prop::collection::vec(tlv(), 1..50), pos in any::<prop::sample::Index>(), mask in 1u8..) {
        let mut buf = control_frame(1, &tlvs);
        let i = pos.index(buf.len());
        buf[i] ^= mask;
        prop_assert!(wire::decode_frame(&buf).is_err());
    }

    /// Arbitrary bytes never panic the decoders, and never panic a node that receives them.
    /// The unchecked peek agrees with the decoders whenever they accept the frame.
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1600)) {
        let peeked = wire::peek_frame(&bytes);
        let _ = wire::peek_update_dests(&bytes).count();
        if let Ok((hdr, body)) = wire::decode_frame(&bytes) {
            let dst = wire::decode_data(body).ok().filter(|_| hdr.kind == FrameKind::Data).map(|d| d.dst);
            if hdr.kind != FrameKind::Data || dst.is_some() {
                prop_assert_eq!(peeked, Some((hdr.sender, dst)));
            }
            match hdr.kind {
                FrameKind::Control => { let _ = TlvIter::new(body).count(); }
                FrameKind::Data => { let _ = wire::decode_data(body); }
                FrameKind::Beacon => { let _ = wire::decode_beacon(body); }
                FrameKind::Handshake => { let _ = wire::decode_fragment(body); }
                FrameKind::Sealed => { let _ = wire::decode_sealed(&bytes); }
            }
        }
        survive(&bytes);
    }

    /// Frames with a valid checksum but nonsense inside (what a buggy or hostile peer sends)
    /// are typed errors too, and a node survives them.
    #[test]
    fn well_framed_garbage_is_rejected(body in prop::collection::vec(any::<u8>(), 0..1400), kind in 0u8..7) {
        let mut buf = vec![b'x', b'0', wire::VERSION, kind, 0, 0, 0, 9];
        buf.extend_from_slice(&(body.len() as u16).to_be_bytes());
        buf.extend_from_slice(&body);
        let crc = crc32(&buf);
        buf.extend_from_slice(&crc.to_be_bytes());
        match wire::decode_frame(&buf) {
            Ok((hdr, body)) => match hdr.kind {
                FrameKind::Control => { let _ = wire::validate_control(body); }
                FrameKind::Data => { let _ = wire::decode_data(body); }
                FrameKind::Beacon => { let _ = wire::decode_beacon(body); }
                FrameKind::Handshake => { let _ = wire::decode_fragment(body); }
                FrameKind::Sealed => { let _ = wire::decode_sealed(&buf); }
            },
            Err(e) => prop_assert!(matches!(e, DecodeError::UnknownKind(_) | DecodeError::TooLong(_))),
        }
        survive(&buf);
    }
}

/// A node with link security and one without each take `bytes` as a datagram and keep
/// working. The secure node's identity is rebuilt from fixed seeds for every case.
fn survive(bytes: &[u8]) {
    let mesh = pair::Anchored::new();
    let secure = Node::new_secure(ProtocolConfig::default(), mesh.node(1, 1000), [4; 32], Instant::ZERO);
    let plain = Node::new(NodeId(1), ProtocolConfig::default(), [3; 32], Instant::ZERO);
    for node in [secure, plain] {
        let mut node = node.expect("default config is valid");
        node.add_interface(Instant::ZERO);
        // The prefetch hint reads the bytes unchecked: it must survive them too.
        for stage in [Lookahead::Tables, Lookahead::Entries] {
            node.datagram_memory(stage, IfIndex(0), bytes, |_, _| {});
        }
        node.handle_datagram(Instant::from_nanos(1_000), IfIndex(0), PeerAddr::default(), bytes);
        node.handle_timeout(Instant::from_nanos(2_000_000_000));
        let mut out = Vec::new();
        while node.poll_transmit(&mut out).is_some() {}
        while node.poll_event().is_some() {}
    }
}

/// CRC-32 (IEEE) written out here so the test does not trust the encoder's checksum.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[test]
fn each_truncation_names_its_problem() {
    let frame = control_frame(5, &[Tlv::Ping { nonce: 1 }]);
    assert_eq!(wire::decode_frame(&frame[..3]), Err(DecodeError::TooShort(3)));
    let mut bad_magic = frame.clone();
    bad_magic[0] = b'y';
    let crc = crc32(&bad_magic[..bad_magic.len() - 4]);
    let n = bad_magic.len();
    bad_magic[n - 4..].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(wire::decode_frame(&bad_magic), Err(DecodeError::BadMagic(_))));
    let mut bad_version = frame.clone();
    bad_version[2] = 9;
    let crc = crc32(&bad_version[..n - 4]);
    bad_version[n - 4..].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(wire::decode_frame(&bad_version), Err(DecodeError::UnsupportedVersion(9)));
    // A TLV whose length runs past the body.
    let mut body = vec![7u8, 10, 0, 0];
    let mut tlv_frame = vec![b'x', b'0', wire::VERSION, 1, 0, 0, 0, 5];
    tlv_frame.extend_from_slice(&(body.len() as u16).to_be_bytes());
    tlv_frame.append(&mut body);
    let crc = crc32(&tlv_frame);
    tlv_frame.extend_from_slice(&crc.to_be_bytes());
    let (_, body) = wire::decode_frame(&tlv_frame).expect("framing is fine");
    assert_eq!(wire::validate_control(body), Err(DecodeError::TruncatedTlv { offset: 0 }));
}

#[test]
fn seqno_comparison_wraps() {
    assert!(wire::seqno_newer(1, 0));
    assert!(wire::seqno_newer(0, 0xFFFF));
    assert!(!wire::seqno_newer(0, 1));
    assert!(!wire::seqno_newer(5, 5));
    assert!(!wire::seqno_newer(0x8000, 0));
}
