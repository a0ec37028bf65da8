//! The handshake state machine fed arbitrary messages at each of its three steps: every
//! input is refused with a `HandshakeError` or accepted, never a panic. The identities are
//! made once; the fuzzer mutates the messages of a genuine exchange (see the corpus).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;
use std::time::Duration;
use x0tta6bl4::ids::NodeId;
use x0tta6bl4::pq::{CryptoRng, SigningKey};
use x0tta6bl4::secure::handshake::{self, Initiator, MessageKind, Responder};
use x0tta6bl4::secure::session::RekeyPolicy;
use x0tta6bl4::secure::{Certificate, Trust, TrustPolicy};
use x0tta6bl4::time::Instant;

struct World {
    a: Trust,
    b: Trust,
    init: Initiator,
    resp: Responder,
}

fn certified(anchor: &SigningKey, id: u32) -> Trust {
    let key = SigningKey::generate(&mut CryptoRng::from_seed([id as u8; 32]));
    let certificate = Certificate::issue(anchor, &mut CryptoRng::from_seed([0; 32]), NodeId(id), key.public().key_id(), 1000);
    Trust { key, certificate: Some(certificate), policy: TrustPolicy::Anchor(anchor.public().clone()), clock_origin_s: 0 }
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let anchor = SigningKey::generate(&mut CryptoRng::from_seed([9; 32]));
    let (a, b) = (certified(&anchor, 1), certified(&anchor, 2));
    let init = Initiator::start(&a, &mut CryptoRng::from_seed([1; 32]), NodeId(2), 7);
    let resp = Responder::respond(&b, &mut CryptoRng::from_seed([2; 32]), 8, 0, init.message()).expect("genuine");
    World { a, b, init, resp }
});

const REKEY: RekeyPolicy = RekeyPolicy { frames: 1 << 20, interval: Duration::from_secs(60) };

fuzz_target!(|msg: &[u8]| {
    let w = &*WORLD;
    let mut rng = CryptoRng::from_seed([3; 32]);
    let Ok(route) = handshake::route(msg) else { return };
    match route.kind {
        MessageKind::Init => {
            let _ = Responder::respond(&w.b, &mut rng, 8, 0, msg);
        }
        MessageKind::Reply => {
            let _ = w.init.finish(&w.a, &mut rng, REKEY, Instant::ZERO, 0, msg);
        }
        MessageKind::Finish => {
            let _ = w.resp.complete(REKEY, Instant::ZERO, msg);
        }
    }
});
