//! Frame decoding: any bytes off the wire give a frame or a `DecodeError`, never a panic, and
//! whatever decodes re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use x0tta6bl4::wire::{self, ControlWriter, FrameKind, TlvIter};

fuzz_target!(|bytes: &[u8]| {
    let Ok((header, body)) = wire::decode_frame(bytes) else { return };
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
    }
});
