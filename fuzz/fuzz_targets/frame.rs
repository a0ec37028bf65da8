//! Frame decoding: any bytes off the wire give a frame or a `DecodeError`, never a panic, and
//! whatever decodes re-encodes to the same bytes. The unchecked peek used for prefetch hints
//! never panics and names the same sender.
#![no_main]

use libfuzzer_sys::fuzz_target;
use x0tta6bl4::wire::{self, ControlWriter, FrameKind, TlvIter};

fuzz_target!(|bytes: &[u8]| {
    let peeked = wire::peek_frame(bytes);
    let Ok((header, body)) = wire::decode_frame(bytes) else { return };
    assert_eq!(peeked.map(|(sender, _)| sender), Some(header.sender), "peek and decode disagree on the sender");
    match header.kind {
        FrameKind::Control => {
            if wire::validate_control(body).is_err() {
                return;
            }
            // Every TLV a version-1 decoder knows survives a round trip; unknown optional
            // TLVs are skipped, so compare only when there were none.
            let mut out = Vec::new();
            ControlWriter::start(&mut out, header.sender);
            let mut known_len = 0;
            for tlv in TlvIter::new(body) {
                let tlv = tlv.expect("validated");
                known_len += tlv.encoded_len();
                ControlWriter::push(&mut out, &tlv);
            }
            ControlWriter::finish(&mut out);
            if known_len == body.len() {
                assert_eq!(out, bytes, "control frame does not round-trip");
            }
        }
        FrameKind::Data => {
            if let Ok(d) = wire::decode_data(body) {
                let mut out = Vec::new();
                wire::encode_data(&mut out, header.sender, &d).expect("a decoded payload fits");
                assert_eq!(out, bytes, "data frame does not round-trip");
            }
        }
        FrameKind::Beacon => {
            if let Ok(incarnation) = wire::decode_beacon(body) {
                let mut out = Vec::new();
                wire::encode_beacon(&mut out, header.sender, incarnation);
                assert_eq!(out, bytes, "beacon does not round-trip");
            }
        }
        FrameKind::Handshake => {
            if let Ok(f) = wire::decode_fragment(body) {
                // Re-encode the fragment from a message that holds its chunk at its place.
                let start = usize::from(f.index) * wire::HANDSHAKE_CHUNK_LEN;
                let mut message = vec![0u8; usize::from(f.message_len)];
                message[0] = f.message_kind;
                message[start..start + f.chunk.len()].copy_from_slice(f.chunk);
                let mut out = Vec::new();
                wire::encode_fragment(&mut out, header.sender, &message, usize::from(f.index));
                if f.index > 0 || f.chunk.first() == Some(&f.message_kind) {
                    assert_eq!(out, bytes, "handshake fragment does not round-trip");
                }
            }
        }
        FrameKind::Sealed => {
            if let Ok(s) = wire::decode_sealed(bytes) {
                assert_eq!(s.aad.len() + s.ciphertext.len() + s.tag.len() + wire::TRAILER_LEN, bytes.len());
                let _ = wire::inner_kind(s.ciphertext[0]);
            }
        }
    }
});
