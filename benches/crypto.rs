//! What zero-trust links cost: each side's CPU for one handshake, and sealing and opening one
//! 200-byte frame. `cargo bench --bench crypto`; figures in docs/PERFORMANCE.md.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use x0tta6bl4::ids::NodeId;
use x0tta6bl4::pq::{CryptoRng, SigningKey};
use x0tta6bl4::secure::handshake::{Initiator, Responder};
use x0tta6bl4::secure::session::{RekeyPolicy, Session};
use x0tta6bl4::secure::{Certificate, Trust, TrustPolicy};
use x0tta6bl4::time::Instant;

const REKEY: RekeyPolicy = RekeyPolicy { frames: u64::MAX, interval: Duration::MAX };

fn certified(anchor: &SigningKey, id: u32) -> Trust {
    let key = SigningKey::generate(&mut CryptoRng::from_seed([id as u8; 32]));
    let certificate = Certificate::issue(anchor, &mut CryptoRng::from_seed([0; 32]), NodeId(id), key.public().key_id(), u64::MAX);
    Trust { key, certificate: Some(certificate), policy: TrustPolicy::Anchor(anchor.public().clone()), clock_origin_s: 0 }
}

fn handshake(c: &mut Criterion) {
    let anchor = SigningKey::generate(&mut CryptoRng::from_seed([9; 32]));
    let (a, b) = (certified(&anchor, 1), certified(&anchor, 2));
    let mut rng = CryptoRng::from_seed([1; 32]);
    let mut g = c.benchmark_group("handshake");
    // The initiator: ML-KEM key generation, then checking the Reply (certificate and
    // signature verification, decapsulation) and signing the Finish.
    g.bench_function("initiator", |bch| {
        bch.iter_batched(
            || {
                let probe = Initiator::start(&a, &mut CryptoRng::from_seed([2; 32]), NodeId(2), 1);
                Responder::respond(&b, &mut CryptoRng::from_seed([3; 32]), 1, 0, probe.message()).unwrap()
            },
            |resp| {
                let init = Initiator::start(&a, &mut CryptoRng::from_seed([2; 32]), NodeId(2), 1);
                black_box(init.finish(&a, &mut rng, REKEY, Instant::ZERO, 0, resp.message()).unwrap());
            },
            BatchSize::SmallInput,
        )
    });
    // The responder: checking the Init's certificate, encapsulating, signing the Reply, then
    // verifying the Finish.
    g.bench_function("responder", |bch| {
        bch.iter_batched(
            || {
                let init = Initiator::start(&a, &mut CryptoRng::from_seed([2; 32]), NodeId(2), 1);
                let resp = Responder::respond(&b, &mut CryptoRng::from_seed([3; 32]), 1, 0, init.message()).unwrap();
                let (_, fin) = init.finish(&a, &mut CryptoRng::from_seed([4; 32]), REKEY, Instant::ZERO, 0, resp.message()).unwrap();
                (init.message().to_vec(), fin)
            },
            |(init, fin)| {
                let resp = Responder::respond(&b, &mut CryptoRng::from_seed([3; 32]), 1, 0, &init).unwrap();
                black_box(resp.complete(REKEY, Instant::ZERO, &fin).unwrap());
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn aead(c: &mut Criterion) {
    let mut g = c.benchmark_group("aead");
    let mut tx = Session::new([1; 32], [2; 32], REKEY, Instant::ZERO);
    let mut frame = [0x5au8; 200];
    g.bench_function("seal_200B", |bch| {
        bch.iter(|| {
            let h = tx.next_header(Instant::ZERO);
            black_box(tx.seal(h, &[0u8; 19], &mut frame))
        })
    });
    let (mut s, mut r) = (
        Session::new([1; 32], [2; 32], REKEY, Instant::ZERO),
        Session::new([2; 32], [1; 32], REKEY, Instant::ZERO),
    );
    g.bench_function("seal_open_200B", |bch| {
        bch.iter(|| {
            let h = s.next_header(Instant::ZERO);
            let tag = s.seal(h, &[0u8; 19], &mut frame);
            r.open(h, &[0u8; 19], &mut frame, &tag).unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, handshake, aead);
criterion_main!(benches);
