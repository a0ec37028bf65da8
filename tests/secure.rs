//! Admission and frame protection, piece by piece: the handshake under each trust policy and
//! each kind of refusal, and the session's AEAD, replay window and rekeying.

use std::collections::BTreeSet;
mod pair;

use pair::{Anchored, rng};
use std::time::Duration;
use x0tta6bl4::ids::NodeId;
use x0tta6bl4::pq::SigningKey;
use x0tta6bl4::secure::handshake::{self, Admitted, HandshakeError, Initiator, MessageKind, Responder};
use x0tta6bl4::secure::session::{OpenError, RekeyPolicy, SealedHeader, Session};
use x0tta6bl4::secure::{Certificate, Refusal, Trust, TrustPolicy};
use x0tta6bl4::time::Instant;

const REKEY: RekeyPolicy = RekeyPolicy { frames: 1000, interval: Duration::from_secs(60) };
const T0: Instant = Instant::ZERO;

/// Runs the three messages; returns (initiator's, responder's) view.
fn handshake(i: &Trust, r: &Trust, now_s: u64) -> Result<(Admitted, Admitted), HandshakeError> {
    let init = Initiator::start(i, &mut rng(50), r.node_id(), 11);
    let resp = Responder::respond(r, &mut rng(51), 22, now_s, init.message())?;
    let (at_i, finish) = init.finish(i, &mut rng(52), REKEY, T0, now_s, resp.message())?;
    let at_r = resp.complete(REKEY, T0, &finish)?;
    Ok((at_i, at_r))
}

/// Seals `body` from `tx` and opens it at `rx`.
fn send(tx: &mut Session, rx: &mut Session, now: Instant, body: &[u8]) -> Result<Vec<u8>, OpenError> {
    let h = tx.next_header(now);
    let mut buf = body.to_vec();
    let tag = tx.seal(h, b"aad", &mut buf);
    rx.open(h, b"aad", &mut buf, &tag).map(|()| buf)
}

#[test]
fn anchored_handshake_admits_both_sides_with_matching_keys() {
    let mesh = Anchored::new();
    let (a, b) = (mesh.node(1, 1000), mesh.node(2, 1000));
    let (mut at_a, mut at_b) = handshake(&a, &b, 10).expect("both certified");
    assert_eq!((at_a.peer, at_b.peer), (NodeId(2), NodeId(1)));
    assert_eq!((at_a.peer_incarnation, at_b.peer_incarnation), (22, 11));
    assert_eq!(at_a.peer_key, b.key.public().key_id());
    assert_eq!(send(&mut at_a.session, &mut at_b.session, T0, b"hello b").unwrap(), b"hello b");
    assert_eq!(send(&mut at_b.session, &mut at_a.session, T0, b"hello a").unwrap(), b"hello a");
}

#[test]
fn allowlist_admits_listed_self_certifying_keys_only() {
    let keys: Vec<SigningKey> = (1..=3).map(|n| SigningKey::generate(&mut rng(n))).collect();
    let listed: BTreeSet<_> = keys[..2].iter().map(|k| k.public().key_id()).collect();
    // Node n holds the key generated from seed n, the same as keys[n - 1].
    let trust = |n: u8| Trust {
        key: SigningKey::generate(&mut rng(n)),
        certificate: None,
        policy: TrustPolicy::Allowlist(listed.clone()),
        clock_origin_s: 0,
    };
    let (a, b, outsider) = (trust(1), trust(2), trust(3));
    assert_eq!(a.node_id(), keys[0].public().key_id().node_id());
    handshake(&a, &b, 0).expect("both listed");
    let err = handshake(&outsider, &b, 0).unwrap_err();
    assert_eq!(err, HandshakeError::Refused(Refusal::UnknownKey(keys[2].public().key_id())));
    // The outsider is refused as a responder too: the initiator checks the Reply.
    let err = handshake(&a, &outsider, 0).unwrap_err();
    assert!(matches!(err, HandshakeError::Refused(Refusal::UnknownKey(_))), "{err}");
}

#[test]
fn expired_and_foreign_certificates_are_refused() {
    let mesh = Anchored::new();
    let (a, old) = (mesh.node(1, 1000), mesh.node(2, 100));
    assert_eq!(
        handshake(&old, &a, 500).unwrap_err(),
        HandshakeError::Refused(Refusal::Expired { not_after_s: 100, now_s: 500 })
    );
    handshake(&old, &a, 100).expect("valid through its last second");

    // A certificate from another anchor.
    let other = Anchored::new();
    let mut stranger = other.node(3, 1000);
    stranger.certificate = Some(Certificate::issue(
        &SigningKey::generate(&mut rng(99)),
        &mut rng(98),
        NodeId(3),
        stranger.key.public().key_id(),
        1000,
    ));
    assert_eq!(handshake(&stranger, &a, 0).unwrap_err(), HandshakeError::Refused(Refusal::BadCertificate));
}

#[test]
fn impersonation_without_the_key_fails() {
    let mesh = Anchored::new();
    let (a, victim) = (mesh.node(1, 1000), mesh.node(2, 1000));
    // Mallory holds a valid certificate of its own (node 3) and claims to be node 2.
    let mallory = mesh.node(3, 1000);
    let as_victim_with_own_cert = Trust {
        key: SigningKey::generate(&mut rng(3)),
        certificate: mallory.certificate.clone(),
        policy: mallory.policy.clone(),
        clock_origin_s: 0,
    };
    // Its Init names itself node 3 (the certificate's node); rewrite the claimed id to 2.
    let init = Initiator::start(&as_victim_with_own_cert, &mut rng(7), NodeId(1), 1);
    let mut forged = init.message().to_vec();
    forged[1..5].copy_from_slice(&2u32.to_be_bytes());
    let err = Responder::respond(&a, &mut rng(8), 1, 0, &forged).unwrap_err();
    assert!(matches!(err, HandshakeError::Refused(Refusal::CertificateMismatch { .. })), "{err}");

    // With the victim's public key and certificate but not its secret key, the Finish
    // cannot be signed. The test gives Mallory every other benefit: the victim's genuine
    // Init went out and Mallory holds its ephemeral state, but signs with its own key.
    let init = Initiator::start(&victim, &mut rng(9), NodeId(1), 1);
    let resp = Responder::respond(&a, &mut rng(10), 5, 0, init.message()).expect("the Init itself is genuine");
    let signer = Trust {
        key: SigningKey::generate(&mut rng(3)),
        certificate: victim.certificate.clone(),
        policy: victim.policy.clone(),
        clock_origin_s: 0,
    };
    let (_, finish) = init.finish(&signer, &mut rng(11), REKEY, T0, 0, resp.message()).expect("the Reply is genuine");
    assert_eq!(resp.complete(REKEY, T0, &finish).unwrap_err(), HandshakeError::BadSignature("initiator's"));
}

#[test]
fn tampered_and_misdirected_messages_are_refused() {
    let mesh = Anchored::new();
    let (a, b, c) = (mesh.node(1, 1000), mesh.node(2, 1000), mesh.node(3, 1000));
    let init = Initiator::start(&a, &mut rng(1), NodeId(2), 1);
    let resp = Responder::respond(&b, &mut rng(2), 2, 0, init.message()).unwrap();
    // A flipped ciphertext bit breaks the responder's signature.
    let mut reply = resp.message().to_vec();
    reply[9 + 4 + 16 + 1952 + 5] ^= 1;
    assert_eq!(
        init.finish(&a, &mut rng(3), REKEY, T0, 0, &reply).unwrap_err(),
        HandshakeError::BadSignature("responder's")
    );
    // An Init for b means nothing to c.
    assert!(matches!(Responder::respond(&c, &mut rng(4), 3, 0, init.message()), Err(HandshakeError::Malformed(_))));
    // Truncations anywhere are malformed, never a panic.
    for cut in [0, 1, 5, 9, 100, init.message().len() - 1] {
        assert!(Responder::respond(&b, &mut rng(5), 2, 0, &init.message()[..cut]).is_err(), "cut at {cut}");
    }
    for cut in [0, 9, 2000, reply.len() - 1] {
        assert!(init.finish(&a, &mut rng(6), REKEY, T0, 0, &resp.message()[..cut]).is_err(), "cut at {cut}");
    }
    assert_eq!(handshake::route(resp.message()).unwrap().kind, MessageKind::Reply);
    assert!(handshake::route(&[9, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
}

#[test]
fn a_replayed_init_admits_nobody() {
    let mesh = Anchored::new();
    let (a, b) = (mesh.node(1, 1000), mesh.node(2, 1000));
    let init = Initiator::start(&a, &mut rng(1), NodeId(2), 1);
    let first = Responder::respond(&b, &mut rng(2), 2, 0, init.message()).unwrap();
    let (_, finish) = init.finish(&a, &mut rng(3), REKEY, T0, 0, first.message()).unwrap();
    first.complete(REKEY, T0, &finish).unwrap();
    // Later, an attacker replays the Init and then the recorded Finish: the new Reply has a
    // fresh nonce, so the old Finish signs the wrong transcript.
    let second = Responder::respond(&b, &mut rng(4), 2, 0, init.message()).unwrap();
    assert!(second.answers(init.message()));
    assert_eq!(second.complete(REKEY, T0, &finish).unwrap_err(), HandshakeError::BadSignature("initiator's"));
}

#[test]
fn handshakes_are_reproducible_from_seeds() {
    let mesh = Anchored::new();
    let (a, b) = (mesh.node(1, 1000), mesh.node(2, 1000));
    let run = || {
        let init = Initiator::start(&a, &mut rng(1), NodeId(2), 1);
        let resp = Responder::respond(&b, &mut rng(2), 2, 0, init.message()).unwrap();
        let (_, finish) = init.finish(&a, &mut rng(3), REKEY, T0, 0, resp.message()).unwrap();
        (init.message().to_vec(), resp.message().to_vec(), finish)
    };
    assert_eq!(run(), run());
    assert!(run().1.len() <= handshake::MAX_MESSAGE_LEN);
}

fn pair(policy: RekeyPolicy) -> (Session, Session) {
    (Session::new([1; 32], [2; 32], policy, T0), Session::new([2; 32], [1; 32], policy, T0))
}

#[test]
fn forged_corrupted_and_replayed_frames_are_refused_without_moving_the_window() {
    let (mut a, mut b) = pair(REKEY);
    let h = a.next_header(T0);
    let mut frame = b"route update".to_vec();
    let tag = a.seal(h, b"hdr", &mut frame);
    let sealed = frame.clone();

    let mut bad = sealed.clone();
    bad[0] ^= 0x80;
    assert_eq!(b.open(h, b"hdr", &mut bad, &tag), Err(OpenError::Forged));
    let mut other_aad = sealed.clone();
    assert_eq!(b.open(h, b"HDR", &mut other_aad, &tag), Err(OpenError::Forged));
    let mut wrong_counter = sealed.clone();
    assert_eq!(
        b.open(SealedHeader { counter: 5, ..h }, b"hdr", &mut wrong_counter, &tag),
        Err(OpenError::Forged),
        "the counter is authenticated"
    );
    // None of those moved the window: the genuine frame still opens, once.
    let mut ok = sealed.clone();
    b.open(h, b"hdr", &mut ok, &tag).unwrap();
    assert_eq!(ok, b"route update");
    let mut again = sealed.clone();
    assert_eq!(b.open(h, b"hdr", &mut again, &tag), Err(OpenError::Replayed(0)));
}

#[test]
fn the_window_accepts_reordering_and_refuses_the_too_old() {
    let (mut a, mut b) = pair(REKEY);
    let frames: Vec<_> = (0..400)
        .map(|_| {
            let h = a.next_header(T0);
            let mut f = vec![7u8; 20];
            let tag = a.seal(h, b"", &mut f);
            (h, f, tag)
        })
        .collect();
    let open = |b: &mut Session, i: usize| {
        let (h, f, tag) = &frames[i];
        b.open(*h, b"", &mut f.clone(), tag)
    };
    open(&mut b, 300).unwrap();
    open(&mut b, 299).unwrap();
    open(&mut b, 45).unwrap(); // 255 behind: inside the window
    assert_eq!(open(&mut b, 44), Err(OpenError::TooOld { counter: 44, highest: 300 }));
    assert_eq!(open(&mut b, 299), Err(OpenError::Replayed(299)));
    open(&mut b, 399).unwrap();
    assert_eq!(open(&mut b, 300), Err(OpenError::Replayed(300)), "the window slid with its bits");
    open(&mut b, 298).unwrap();
}

#[test]
fn sessions_rekey_by_frame_count_and_by_time_and_receivers_follow() {
    let policy = RekeyPolicy { frames: 10, interval: Duration::from_secs(5) };
    let (mut a, mut b) = pair(policy);
    let mut straggler = None;
    for i in 0..35 {
        let h = a.next_header(T0);
        let mut f = vec![i as u8; 8];
        let tag = a.seal(h, b"", &mut f);
        if i == 19 {
            straggler = Some((h, f, tag)); // overtaken by the next epoch's first frame
            continue;
        }
        b.open(h, b"", &mut f, &tag).unwrap();
        assert_eq!(f, vec![i as u8; 8]);
        if i == 20 {
            let (h, mut f, tag) = straggler.take().unwrap();
            assert_eq!(h.epoch, 1);
            b.open(h, b"", &mut f, &tag).expect("the previous epoch's key is kept for stragglers");
        }
    }
    assert_eq!(a.tx_epoch(), 3, "35 frames at 10 per key");

    // Time alone also rekeys.
    let later = T0 + Duration::from_secs(6);
    let h = a.next_header(later);
    assert_eq!(h.epoch, 4);
    let mut f = b"late".to_vec();
    let tag = a.seal(h, b"", &mut f);
    b.open(h, b"", &mut f, &tag).unwrap();

    // A frame claiming an epoch far ahead is refused without trying keys.
    let h = SealedHeader { epoch: 9, counter: 1000 };
    assert!(matches!(b.open(h, b"", &mut [0u8; 4], &[0; 16]), Err(OpenError::UnknownEpoch { got: 9, .. })));
}
