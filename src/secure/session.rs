//! One admitted link's traffic keys: AES-256-GCM on every frame, nonces from per-direction
//! counters, a sliding replay window, and rekeying by a one-way ratchet.
//!
//! AES-256-GCM rather than ChaCha20-Poly1305 because it is six times faster on the machines
//! meshes run on (AES-NI and carry-less multiply): 0.28 against 1.9 µs to seal a 200-byte
//! frame here, on every frame of every link. GCM must never reuse a nonce under one key; here
//! each direction has its own key and its counter never repeats.
//!
//! Each direction has its own key, so the two ends never share a (key, nonce) pair. A frame
//! carries its key epoch and its counter in the clear; both are authenticated as associated
//! data. After `rekey_frames` frames or `rekey_interval` the sender ratchets its key
//! (`next = HKDF-Expand(key, "x0 rekey")`) and bumps the epoch; the receiver follows the
//! first authentic frame of the next epoch and keeps the previous key for stragglers. The
//! old key is wiped, so a key stolen later does not open earlier traffic.
//!
//! The counter runs on across epochs, which lets one replay window cover them all. A frame is
//! believed only after its tag checks; only then does it move the window, so a forgery can
//! neither be processed nor push genuine frames out of the window.

use crate::time::Instant;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use hkdf::Hkdf;
use sha2::Sha256;
use std::time::Duration;
use thiserror::Error;
use zeroize::Zeroize;

pub use crate::wire::TAG_LEN;
/// Counters below `highest - REPLAY_WINDOW` are refused as too old: the window is four
/// words of bits, wide enough for any reordering a mesh link produces.
pub const REPLAY_WINDOW: u64 = 256;

/// When a direction's key is replaced.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RekeyPolicy {
    pub frames: u64,
    pub interval: Duration,
}

/// Why a sealed frame was refused. None of these frames is processed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Error)]
pub enum OpenError {
    #[error("authentication failed (forged, corrupted, or sealed with another key)")]
    Forged,
    #[error("counter {0} was already received (a replay)")]
    Replayed(u64),
    #[error("counter {counter} is older than the replay window (highest seen {highest})")]
    TooOld { counter: u64, highest: u64 },
    #[error("key epoch {got} is neither the current ({current}), the previous, nor the next")]
    UnknownEpoch { got: u8, current: u8 },
}

/// A 32-byte key that is wiped when dropped or replaced.
struct Key([u8; 32]);

impl Key {
    fn ratchet(&self) -> Key {
        let hk = Hkdf::<Sha256>::from_prk(&self.0).expect("32-byte PRK");
        let mut next = [0u8; 32];
        hk.expand(b"x0 rekey", &mut next).expect("32 bytes is a valid HKDF length");
        Key(next)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&self.0.into())
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

fn nonce(epoch: u8, counter: u64) -> Nonce<aes_gcm::aead::consts::U12> {
    let mut n = [0u8; 12];
    n[0] = epoch;
    n[4..].copy_from_slice(&counter.to_be_bytes());
    n.into()
}

struct Sender {
    key: Key,
    cipher: Aes256Gcm,
    epoch: u8,
    next_counter: u64,
    frames_in_epoch: u64,
    epoch_started: Instant,
}

struct Receiver {
    key: Key,
    cipher: Aes256Gcm,
    epoch: u8,
    /// The previous epoch's cipher, for frames sealed just before the sender ratcheted.
    previous: Option<Aes256Gcm>,
    /// Highest authentic counter, and which of the `REPLAY_WINDOW` counters at or below it
    /// were seen (bit i: `highest - i`).
    highest: Option<u64>,
    seen: [u64; 4],
}

impl Receiver {
    fn check_replay(&self, counter: u64) -> Result<(), OpenError> {
        let Some(highest) = self.highest else { return Ok(()) };
        if counter > highest {
            return Ok(());
        }
        let age = highest - counter;
        if age >= REPLAY_WINDOW {
            return Err(OpenError::TooOld { counter, highest });
        }
        if self.seen[(age / 64) as usize] & (1 << (age % 64)) != 0 {
            return Err(OpenError::Replayed(counter));
        }
        Ok(())
    }

    fn mark(&mut self, counter: u64) {
        match self.highest {
            Some(h) if counter <= h => {
                let age = h - counter;
                self.seen[(age / 64) as usize] |= 1 << (age % 64);
            }
            _ => {
                let shift = self.highest.map_or(REPLAY_WINDOW, |h| counter - h);
                shift_window(&mut self.seen, shift);
                self.seen[0] |= 1;
                self.highest = Some(counter);
            }
        }
    }
}

/// Ages every bit of the window by `shift` (bit i moves to bit i + shift).
fn shift_window(w: &mut [u64; 4], shift: u64) {
    if shift >= REPLAY_WINDOW {
        *w = [0; 4];
        return;
    }
    let (words, bits) = ((shift / 64) as usize, (shift % 64) as u32);
    for i in (0..4).rev() {
        let lo = if i >= words { w[i - words] } else { 0 };
        let below = if i > words { w[i - words - 1] } else { 0 };
        w[i] = if bits == 0 { lo } else { (lo << bits) | (below >> (64 - bits)) };
    }
}

/// Traffic keys of one admitted link.
pub struct Session {
    tx: Sender,
    rx: Receiver,
    policy: RekeyPolicy,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("tx_epoch", &self.tx.epoch)
            .field("tx_counter", &self.tx.next_counter)
            .field("rx_epoch", &self.rx.epoch)
            .field("rx_highest", &self.rx.highest)
            .finish_non_exhaustive()
    }
}

/// Where a sealed frame's fields go: the header bytes before the ciphertext are associated
/// data, so the receiver learns of any change to sender, epoch or counter.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SealedHeader {
    pub epoch: u8,
    pub counter: u64,
}

impl Session {
    /// Keys for both directions, from the handshake's key schedule.
    pub fn new(tx_key: [u8; 32], rx_key: [u8; 32], policy: RekeyPolicy, now: Instant) -> Self {
        let (tx, rx) = (Key(tx_key), Key(rx_key));
        Session {
            tx: Sender {
                cipher: tx.cipher(),
                key: tx,
                epoch: 0,
                next_counter: 0,
                frames_in_epoch: 0,
                epoch_started: now,
            },
            rx: Receiver { cipher: rx.cipher(), key: rx, epoch: 0, previous: None, highest: None, seen: [0; 4] },
            policy,
        }
    }

    /// The epoch and counter the next sealed frame will carry (rekeying first if due).
    /// The caller writes them into the header, then calls [`Session::seal`] with it.
    pub fn next_header(&mut self, now: Instant) -> SealedHeader {
        let tx = &mut self.tx;
        if tx.frames_in_epoch >= self.policy.frames || now.saturating_since(tx.epoch_started) >= self.policy.interval
        {
            tx.key = tx.key.ratchet();
            tx.cipher = tx.key.cipher();
            tx.epoch = tx.epoch.wrapping_add(1);
            tx.frames_in_epoch = 0;
            tx.epoch_started = now;
        }
        SealedHeader { epoch: tx.epoch, counter: tx.next_counter }
    }

    /// Encrypts `body` in place under the header from [`Session::next_header`] and returns
    /// the tag to append. `aad` is every frame byte before the body.
    pub fn seal(&mut self, header: SealedHeader, aad: &[u8], body: &mut [u8]) -> [u8; TAG_LEN] {
        let tx = &mut self.tx;
        assert_eq!(
            (header.epoch, header.counter),
            (tx.epoch, tx.next_counter),
            "seal() takes the header next_header() returned"
        );
        let tag = tx
            .cipher
            .encrypt_in_place_detached(&nonce(header.epoch, header.counter), aad, body)
            .expect("AES-GCM seals any frame under 64 GiB");
        tx.next_counter = tx.next_counter.checked_add(1).expect("2^64 frames on one session");
        tx.frames_in_epoch += 1;
        tag.into()
    }

    /// Authenticates and decrypts `body` in place. On error nothing changed: `body` must
    /// not be used and the window has not moved.
    pub fn open(&mut self, header: SealedHeader, aad: &[u8], body: &mut [u8], tag: &[u8; TAG_LEN]) -> Result<(), OpenError> {
        let rx = &mut self.rx;
        rx.check_replay(header.counter)?;
        let n = nonce(header.epoch, header.counter);
        let tag = Tag::from(*tag);
        let next_epoch = rx.epoch.wrapping_add(1);
        if header.epoch == rx.epoch {
            rx.cipher.decrypt_in_place_detached(&n, aad, body, &tag).map_err(|_| OpenError::Forged)?;
        } else if header.epoch == next_epoch {
            let key = rx.key.ratchet();
            let cipher = key.cipher();
            cipher.decrypt_in_place_detached(&n, aad, body, &tag).map_err(|_| OpenError::Forged)?;
            // Authentic: the peer has ratcheted, so we follow.
            rx.previous = Some(std::mem::replace(&mut rx.cipher, cipher));
            rx.key = key;
            rx.epoch = next_epoch;
        } else if header.epoch == rx.epoch.wrapping_sub(1)
            && let Some(prev) = &rx.previous
        {
            prev.decrypt_in_place_detached(&n, aad, body, &tag).map_err(|_| OpenError::Forged)?;
        } else {
            return Err(OpenError::UnknownEpoch { got: header.epoch, current: rx.epoch });
        }
        rx.mark(header.counter);
        Ok(())
    }

    /// Authenticates and decrypts, in place, a frame this side sealed: one quoted back by
    /// a report that it went undelivered. Only the current sending epoch opens, and
    /// nothing changes: our own frames coming back are no traffic from the peer.
    pub fn open_own(&self, header: SealedHeader, aad: &[u8], body: &mut [u8], tag: &[u8; TAG_LEN]) -> Result<(), OpenError> {
        let tx = &self.tx;
        if header.epoch != tx.epoch {
            return Err(OpenError::UnknownEpoch { got: header.epoch, current: tx.epoch });
        }
        let n = nonce(header.epoch, header.counter);
        tx.cipher.decrypt_in_place_detached(&n, aad, body, &Tag::from(*tag)).map_err(|_| OpenError::Forged)
    }

    /// The key epoch this side seals with, for tests and metrics.
    pub fn tx_epoch(&self) -> u8 {
        self.tx.epoch
    }
}
