//! Our ML-DSA-65 and ML-KEM-768 (liboqs, through `x0tta6bl4::pq`) against a second,
//! independent implementation: RustCrypto's `ml-dsa` and `ml-kem`. Keys, ciphertexts and
//! signatures made by one are accepted by the other, and, because `pq` draws every random
//! byte from a seeded stream, seeded operations produce the same bytes on both sides. That
//! makes our wire format standard FIPS 203/204, not merely self-consistent.

use ml_dsa::{Keypair as _, MlDsa65, Signature as RcSignature, SigningKey as RcSigningKey};
use ml_kem::kem::{Decapsulate, Encapsulate, TryKeyInit};
use ml_kem::{DecapsulationKey768, EncapsulationKey768, KeyExport as _};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use x0tta6bl4::pq::{self, CryptoRng, KemKeyPair, PublicKey, SigningKey};

/// The first `N` bytes a seeded stream yields: what liboqs drew inside `pq`.
fn draw<const N: usize>(seed: [u8; 32]) -> [u8; N] {
    let mut out = [0u8; N];
    ChaCha20Rng::from_seed(seed).fill_bytes(&mut out);
    out
}

#[test]
fn ml_dsa_65_keys_from_the_same_seed_are_identical() {
    for s in 0..4u8 {
        let seed = [s; 32];
        let ours = SigningKey::generate(&mut CryptoRng::from_seed(seed));
        let xi: [u8; 32] = draw(seed);
        let theirs = RcSigningKey::<MlDsa65>::from_seed(&xi.into());
        assert_eq!(theirs.verifying_key().encode().as_slice(), &ours.public().as_bytes()[..], "seed {s}");
    }
}

#[test]
fn ml_dsa_65_signatures_cross_verify_and_match_byte_for_byte() {
    let key_seed = [7u8; 32];
    let ours = SigningKey::generate(&mut CryptoRng::from_seed(key_seed));
    let theirs = RcSigningKey::<MlDsa65>::from_seed(&draw::<32>(key_seed).into());
    let vk = theirs.verifying_key();
    let msg = b"x0tta6bl4 handshake transcript";

    // liboqs signs (hedged: 32 bytes from the stream); RustCrypto verifies, and signing the
    // same message with the same randomness there gives the very same bytes.
    let sign_seed = [9u8; 32];
    let sig = ours.sign(&mut CryptoRng::from_seed(sign_seed), msg);
    let parsed = RcSignature::<MlDsa65>::try_from(&sig.0[..]).expect("RustCrypto parses a liboqs signature");
    assert!(vk.verify_with_context(msg, b"", &parsed), "RustCrypto rejects a liboqs signature");
    let rnd: [u8; 32] = draw(sign_seed);
    // Pure ML-DSA with an empty context: M' = 0 || len(ctx) = 0 || M (FIPS 204, Algorithm 2).
    let same = theirs.expanded_key().sign_internal(&[&[0u8, 0][..], &msg[..]], &rnd.into());
    assert_eq!(same.encode().as_slice(), &sig.0[..], "hedged signatures differ");

    // RustCrypto signs; liboqs verifies.
    let theirs_sig = theirs.expanded_key().sign_deterministic(msg, b"").expect("short context");
    let pk = PublicKey::from_bytes(vk.encode().as_slice()).expect("key length");
    assert!(pk.verify(msg, theirs_sig.encode().as_slice()), "liboqs rejects a RustCrypto signature");

    // And neither accepts a signature of another message or a flipped bit.
    assert!(!pk.verify(b"another message", &sig.0[..]));
    let mut bad = sig.0.clone();
    bad[100] ^= 1;
    assert!(!ours.public().verify(msg, &bad[..]));
    assert!(!ours.public().verify(msg, &sig.0[..100]), "a truncated signature must not verify");
}

#[test]
fn ml_kem_768_keys_and_ciphertexts_are_identical_and_interoperate() {
    // Key generation draws d || z, 64 bytes (FIPS 203, Algorithm 19).
    let key_seed = [3u8; 32];
    let ours = KemKeyPair::generate(&mut CryptoRng::from_seed(key_seed));
    let dz: [u8; 64] = draw(key_seed);
    let theirs = DecapsulationKey768::from_seed(dz.into());
    let their_ek = theirs.encapsulation_key();
    assert_eq!(their_ek.to_bytes().as_slice(), &ours.encapsulation_key()[..], "encapsulation keys differ");

    // liboqs encapsulates (m: 32 bytes from the stream) to RustCrypto's key: same ciphertext
    // and secret as RustCrypto's deterministic encapsulation with that m, and RustCrypto
    // decapsulates it to the same secret.
    let enc_seed = [5u8; 32];
    let ek_bytes: [u8; pq::KEM_PUBLIC_KEY_LEN] = their_ek.to_bytes().as_slice().try_into().unwrap();
    let (ct, ss) = pq::encapsulate(&mut CryptoRng::from_seed(enc_seed), &ek_bytes).expect("valid key");
    let m: [u8; 32] = draw(enc_seed);
    let (their_ct, their_ss) = their_ek.encapsulate_deterministic(&m.into());
    assert_eq!(their_ct.as_slice(), &ct[..], "ciphertexts differ");
    assert_eq!(their_ss.as_slice(), &ss.0[..], "shared secrets differ");
    let parsed_ct = ct[..].try_into().expect("ciphertext length");
    assert_eq!(theirs.decapsulate(&parsed_ct).as_slice(), &ss.0[..]);

    // RustCrypto encapsulates to our key; liboqs decapsulates to the same secret.
    let our_ek = EncapsulationKey768::new_from_slice(&ours.encapsulation_key()[..]).expect("valid key");
    let (ct2, ss2) = our_ek.encapsulate_with_rng(&mut ChaCha20Rng::from_seed([11; 32]));
    let ct2: [u8; pq::KEM_CIPHERTEXT_LEN] = ct2.as_slice().try_into().unwrap();
    assert_eq!(ours.decapsulate(&ct2).0, ss2.as_slice());
}
