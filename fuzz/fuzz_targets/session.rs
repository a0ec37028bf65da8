//! The session under an arbitrary schedule of seals, deliveries, replays, forgeries and
//! clock steps: every genuine frame opens at most once and yields what was sealed, and
//! nothing the sender did not seal ever opens.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::time::Duration;
use x0tta6bl4::secure::session::{RekeyPolicy, SealedHeader, Session};
use x0tta6bl4::time::Instant;

const AAD: &[u8] = b"header";

struct Sent {
    header: SealedHeader,
    sealed: Vec<u8>,
    tag: [u8; 16],
    plain: Vec<u8>,
    opened: bool,
}

fuzz_target!(|ops: &[u8]| {
    let policy = RekeyPolicy { frames: 7, interval: Duration::from_millis(500) };
    let mut now = Instant::ZERO;
    let mut tx = Session::new([1; 32], [2; 32], policy, now);
    let mut rx = Session::new([2; 32], [1; 32], policy, now);
    let mut sent: Vec<Sent> = Vec::new();
    for pair in ops.chunks(2) {
        let (op, arg) = (pair[0] % 4, *pair.get(1).unwrap_or(&0));
        let pick = if sent.is_empty() { None } else { Some(usize::from(arg) % sent.len()) };
        match (op, pick) {
            (0, _) => {
                let header = tx.next_header(now);
                let plain = vec![arg; usize::from(arg % 40)];
                let mut sealed = plain.clone();
                let tag = tx.seal(header, AAD, &mut sealed);
                sent.push(Sent { header, sealed, tag, plain, opened: false });
            }
            // Deliver (or deliver again) one frame, in whatever order the schedule says.
            (1, Some(i)) => {
                let s = &mut sent[i];
                let mut b = s.sealed.clone();
                if rx.open(s.header, AAD, &mut b, &s.tag).is_ok() {
                    assert!(!s.opened, "frame {i} opened twice");
                    assert_eq!(b, s.plain, "frame {i} opened to other bytes");
                    s.opened = true;
                }
            }
            // A forgery: a genuine frame with one bit changed in body, tag, counter, epoch or
            // associated data.
            (2, Some(i)) => {
                let s = &sent[i];
                let (mut b, mut t, mut h, mut aad) = (s.sealed.clone(), s.tag, s.header, AAD.to_vec());
                let bit = 1u8 << (arg % 8);
                match arg % 5 {
                    0 if !b.is_empty() => {
                        let n = b.len();
                        b[usize::from(arg) % n] ^= bit;
                    }
                    1 => t[usize::from(arg) % 16] ^= bit,
                    2 => h.counter ^= u64::from(bit),
                    3 => h.epoch ^= bit,
                    _ => aad[usize::from(arg) % AAD.len()] ^= bit,
                }
                assert!(rx.open(h, &aad, &mut b, &t).is_err(), "a forged frame opened");
            }
            (3, _) => now = now + Duration::from_millis(u64::from(arg) * 10),
            _ => {}
        }
    }
});
