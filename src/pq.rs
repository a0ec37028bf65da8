//! Post-quantum primitives through liboqs (the `oqs` crate): ML-DSA-65 (FIPS 204) signs a
//! node's identity, ML-KEM-768 (FIPS 203) agrees on link keys.
//!
//! # Randomness is an input
//!
//! liboqs draws its random bytes from one process-wide function. This module installs a
//! function that reads a seeded ChaCha20 stream ([`CryptoRng`]) which the caller lends for the
//! duration of each operation, on the calling thread. So the simulator derives every key,
//! encapsulation and hedged signature from the scenario seed (same seed, same bytes, same
//! fingerprint, on any number of threads), and the live daemon seeds the stream from the
//! operating system once at start. FIPS 203 and 204 define key generation from a seed, so a
//! seeded stream yields standard keys: `tests/pq_conformance.rs` checks byte for byte against
//! RustCrypto's implementations. A liboqs call that draws randomness outside a lent stream is
//! a bug here and aborts the process rather than fall back to an unseeded source.

use crate::ids::NodeId;
use oqs::kem::{Algorithm as KemAlgorithm, Kem};
use oqs::sig::{Algorithm as SigAlgorithm, Sig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};
use std::cell::Cell;
use std::fmt;
use std::sync::{Once, OnceLock};
use thiserror::Error;
use zeroize::Zeroize;

pub const SIG_PUBLIC_KEY_LEN: usize = 1952;
pub const SIG_SECRET_KEY_LEN: usize = 4032;
pub const SIGNATURE_LEN: usize = 3309;
pub const KEM_PUBLIC_KEY_LEN: usize = 1184;
pub const KEM_SECRET_KEY_LEN: usize = 2400;
pub const KEM_CIPHERTEXT_LEN: usize = 1088;
pub const SHARED_SECRET_LEN: usize = 32;

/// The seeded stream every random byte of a crypto operation comes from.
pub struct CryptoRng(ChaCha20Rng);

impl CryptoRng {
    pub fn from_seed(seed: [u8; 32]) -> Self {
        CryptoRng(ChaCha20Rng::from_seed(seed))
    }

    /// Fresh bytes for protocol nonces, from the same stream.
    pub fn fill(&mut self, out: &mut [u8]) {
        self.0.fill_bytes(out);
    }
}

impl fmt::Debug for CryptoRng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CryptoRng(..)")
    }
}

thread_local! {
    /// The stream lent to the liboqs call running on this thread, if any.
    static LENT: Cell<Option<*mut ChaCha20Rng>> = const { Cell::new(None) };
}

extern "C" fn randombytes_from_lent_stream(out: *mut u8, len: usize) {
    let Some(rng) = LENT.with(Cell::get) else {
        // Panicking in an `extern "C"` function aborts, with this message: randomness
        // from anywhere else would silently break reproducibility.
        panic!("liboqs drew randomness outside x0tta6bl4::pq (no seeded stream lent)");
    };
    if len == 0 {
        return;
    }
    // SAFETY: liboqs passes a writable buffer of `len` bytes. `rng` points at the stream that
    // `with_stream` borrowed mutably for the duration of the liboqs call that is running on
    // this thread right now, and nothing else touches it meanwhile.
    let (out, rng) = unsafe { (std::slice::from_raw_parts_mut(out, len), &mut *rng) };
    rng.fill_bytes(out);
}

/// Runs `op` (one liboqs call) with `rng` as liboqs's source of randomness.
fn with_stream<T>(rng: &mut CryptoRng, op: impl FnOnce() -> T) -> T {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        oqs::init();
        // SAFETY: installs a plain function pointer once, before any liboqs call of ours.
        unsafe { oqs::ffi::rand::OQS_randombytes_custom_algorithm(Some(randombytes_from_lent_stream)) };
    });
    /// Takes the loan back even if `op` panics.
    struct Return;
    impl Drop for Return {
        fn drop(&mut self) {
            LENT.with(|l| l.set(None));
        }
    }
    assert!(LENT.with(Cell::get).is_none(), "nested liboqs call");
    LENT.with(|l| l.set(Some(&mut rng.0 as *mut ChaCha20Rng)));
    let _return = Return;
    op()
}

fn sig() -> &'static Sig {
    static SIG: OnceLock<Sig> = OnceLock::new();
    SIG.get_or_init(|| {
        oqs::init();
        Sig::new(SigAlgorithm::MlDsa65).expect("liboqs built with ML-DSA-65")
    })
}

fn kem() -> &'static Kem {
    static KEM: OnceLock<Kem> = OnceLock::new();
    KEM.get_or_init(|| {
        oqs::init();
        Kem::new(KemAlgorithm::MlKem768).expect("liboqs built with ML-KEM-768")
    })
}

/// Why key material was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Error)]
pub enum KeyError {
    #[error("{what} is {len} bytes; ML-DSA-65/ML-KEM-768 need {want}")]
    Length { what: &'static str, len: usize, want: usize },
    #[error("the secret key does not sign for the public key beside it (mismatched or corrupt key file)")]
    Mismatch,
    #[error("liboqs refused the {0}")]
    Rejected(&'static str),
}

fn fixed<const N: usize>(what: &'static str, bytes: &[u8]) -> Result<Box<[u8; N]>, KeyError> {
    let arr: [u8; N] = bytes.try_into().map_err(|_| KeyError::Length { what, len: bytes.len(), want: N })?;
    Ok(Box::new(arr))
}

/// SHA-256, the hash every identity and transcript here uses.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A node's long-term identity: SHA-256 of its ML-DSA-65 public key.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub [u8; 32]);

impl KeyId {
    /// The 31-bit router id a self-certifying node takes: the top bit is left clear because
    /// ids with it set name areas (`crate::area`).
    pub fn node_id(&self) -> NodeId {
        NodeId(u32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]]) & 0x7FFF_FFFF)
    }

    /// Lowercase hex of all 32 bytes, as allowlists spell it.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses exactly 64 hex digits (either case).
    pub fn from_hex(s: &str) -> Option<KeyId> {
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut id = [0u8; 32];
        for (i, byte) in id.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(KeyId(id))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", &self.to_hex()[..16])
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex()[..16])
    }
}

/// An ML-DSA-65 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(Box<[u8; SIG_PUBLIC_KEY_LEN]>);

impl PublicKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        Ok(PublicKey(fixed("ML-DSA-65 public key", bytes)?))
    }

    pub fn as_bytes(&self) -> &[u8; SIG_PUBLIC_KEY_LEN] {
        &self.0
    }

    pub fn key_id(&self) -> KeyId {
        KeyId(sha256(&self.0[..]))
    }

    /// Whether `signature` is this key's ML-DSA-65 signature of `msg` (empty context).
    /// Verification draws no randomness.
    pub fn verify(&self, msg: &[u8], signature: &[u8]) -> bool {
        let s = sig();
        let (Some(pk), Some(sg)) = (s.public_key_from_bytes(&self.0[..]), s.signature_from_bytes(signature)) else {
            return false;
        };
        s.verify(msg, sg, pk).is_ok()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.key_id())
    }
}

/// An ML-DSA-65 signature.
#[derive(Clone, PartialEq, Eq)]
pub struct Signature(pub Box<[u8; SIGNATURE_LEN]>);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({:02x?}..)", &self.0[..4])
    }
}

/// An ML-DSA-65 key pair. The secret half is wiped when dropped; a clone holds its own copy
/// and wipes it too.
#[derive(Clone)]
pub struct SigningKey {
    public: PublicKey,
    secret: Box<[u8; SIG_SECRET_KEY_LEN]>,
}

impl SigningKey {
    /// FIPS 204 key generation from 32 bytes of `rng`.
    pub fn generate(rng: &mut CryptoRng) -> Self {
        let (pk, sk) = with_stream(rng, || sig().keypair()).expect("ML-DSA-65 key generation cannot fail");
        SigningKey {
            public: PublicKey(fixed("public key", pk.as_ref()).expect("liboqs key length")),
            secret: fixed("secret key", sk.as_ref()).expect("liboqs key length"),
        }
    }

    /// A key pair read back from storage. Refuses a pair whose halves do not belong together
    /// (signs and verifies a fixed message with them).
    pub fn from_bytes(public: &[u8], secret: &[u8], rng: &mut CryptoRng) -> Result<Self, KeyError> {
        let key = SigningKey {
            public: PublicKey::from_bytes(public)?,
            secret: fixed("ML-DSA-65 secret key", secret)?,
        };
        let probe = b"x0tta6bl4 key pair check";
        if !key.public.verify(probe, &key.sign(rng, probe).0[..]) {
            return Err(KeyError::Mismatch);
        }
        Ok(key)
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    pub fn secret_bytes(&self) -> &[u8; SIG_SECRET_KEY_LEN] {
        &self.secret
    }

    /// A hedged ML-DSA-65 signature (FIPS 204's default): 32 bytes of `rng` go in.
    pub fn sign(&self, rng: &mut CryptoRng, msg: &[u8]) -> Signature {
        let s = sig();
        let sk = s.secret_key_from_bytes(&self.secret[..]).expect("secret key length checked");
        let signature = with_stream(rng, || s.sign(msg, sk)).expect("ML-DSA-65 signing cannot fail");
        Signature(fixed("signature", signature.as_ref()).expect("liboqs signature length"))
    }
}

impl Drop for SigningKey {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.public.key_id())
    }
}

/// A shared secret from ML-KEM-768, wiped when dropped.
pub struct SharedSecret(pub [u8; SHARED_SECRET_LEN]);

impl Drop for SharedSecret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// An ephemeral ML-KEM-768 key pair: one per handshake, dropped (and wiped) after it.
pub struct KemKeyPair {
    encapsulation: Box<[u8; KEM_PUBLIC_KEY_LEN]>,
    decapsulation: Box<[u8; KEM_SECRET_KEY_LEN]>,
}

impl KemKeyPair {
    /// FIPS 203 key generation from 64 bytes of `rng`.
    pub fn generate(rng: &mut CryptoRng) -> Self {
        let (ek, dk) = with_stream(rng, || kem().keypair()).expect("ML-KEM-768 key generation cannot fail");
        KemKeyPair {
            encapsulation: fixed("encapsulation key", ek.as_ref()).expect("liboqs key length"),
            decapsulation: fixed("decapsulation key", dk.as_ref()).expect("liboqs key length"),
        }
    }

    pub fn encapsulation_key(&self) -> &[u8; KEM_PUBLIC_KEY_LEN] {
        &self.encapsulation
    }

    /// The shared secret in `ciphertext`. ML-KEM decapsulation never fails on a
    /// well-sized ciphertext: a forged one yields a secret nobody else knows (implicit
    /// rejection), which the handshake's key confirmation then exposes.
    pub fn decapsulate(&self, ciphertext: &[u8; KEM_CIPHERTEXT_LEN]) -> SharedSecret {
        let k = kem();
        let dk = k.secret_key_from_bytes(&self.decapsulation[..]).expect("key length checked");
        let ct = k.ciphertext_from_bytes(&ciphertext[..]).expect("ciphertext length checked");
        let ss = k.decapsulate(dk, ct).expect("ML-KEM-768 decapsulation cannot fail");
        let mut out = [0u8; SHARED_SECRET_LEN];
        out.copy_from_slice(ss.as_ref());
        SharedSecret(out)
    }
}

impl Drop for KemKeyPair {
    fn drop(&mut self) {
        self.decapsulation.zeroize();
    }
}

/// Encapsulates a fresh secret to `encapsulation_key` (32 bytes of `rng`). Refuses a key
/// that fails FIPS 203's input check.
pub fn encapsulate(
    rng: &mut CryptoRng,
    encapsulation_key: &[u8; KEM_PUBLIC_KEY_LEN],
) -> Result<(Box<[u8; KEM_CIPHERTEXT_LEN]>, SharedSecret), KeyError> {
    let k = kem();
    let ek = k.public_key_from_bytes(&encapsulation_key[..]).expect("key length checked");
    let (ct, ss) = with_stream(rng, || k.encapsulate(ek)).map_err(|_| KeyError::Rejected("encapsulation key"))?;
    let mut secret = [0u8; SHARED_SECRET_LEN];
    secret.copy_from_slice(ss.as_ref());
    Ok((fixed("ciphertext", ct.as_ref()).expect("liboqs ciphertext length"), SharedSecret(secret)))
}
