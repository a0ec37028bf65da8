//! The wire format: real bytes, because the live backend sends exactly these over UDP.
//!
//! ```text
//! frame     = magic "x0" | version u8 | kind u8 | sender u32 | body_len u16 | body | crc32 u32
//! control   = tlv*            tlv = type u8 | len u8 | value[len]
//! data      = src u32 | dst u32 | ttl u8 | class u8 | id u64 | origin_ts u64 | payload_len u16 | payload
//! beacon    = incarnation u32
//! handshake = message_kind u8 | message_len u16 | index u8 | chunk
//! sealed    = epoch u8 | counter u64 | AEAD(inner_kind u8 | inner body) | tag[16]
//! ```
//!
//! On a mesh with link security, only beacons (discovery) and handshake fragments travel in
//! the clear; every control and data frame travels as the body of a sealed frame, whose
//! header, epoch and counter are the AEAD's associated data. A handshake message (up to
//! about 10 kB of keys and signatures) is cut into `HANDSHAKE_CHUNK_LEN` chunks so that
//! no frame exceeds the MTU: nothing relies on IP fragmentation, which middleboxes drop and
//! which hides the UDP header from the XDP program.
//!
//! All integers are big-endian. The CRC-32 covers every byte before it: a corrupted frame is
//! rejected as a whole instead of being half-believed (a flipped metric bit would otherwise
//! be a lie the routing protocol trusts). Decoding is bounds-checked everywhere and returns a
//! [`DecodeError`] for any truncated or garbled input; it never panics and never allocates.

use crate::ids::NodeId;
use thiserror::Error;

pub const MAGIC: [u8; 2] = *b"x0";
pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 10;
pub const TRAILER_LEN: usize = 4;
/// Frames never exceed this: one Ethernet MTU minus IPv6 and UDP headers.
pub const MAX_FRAME_LEN: usize = 1452;
pub const DATA_HEADER_LEN: usize = 4 + 4 + 1 + 1 + 8 + 8 + 2;
/// Metric value meaning "unreachable" (a retraction), as in Babel.
pub const METRIC_INFINITY: u16 = 0xFFFF;

/// TLV types below this are mandatory: a version-1 decoder that does not know one rejects the
/// frame. Types at or above it are optional extensions a decoder skips.
const FIRST_OPTIONAL_TLV: u8 = 128;

/// Bytes a sealed frame adds to the plaintext frame it carries: epoch, counter, the inner
/// kind and the tag, minus nothing (the inner header and checksum are not repeated).
pub const SEAL_OVERHEAD: usize = SEALED_PREFIX_LEN + 1 + TAG_LEN;
/// Epoch and counter, in clear, before the ciphertext.
pub const SEALED_PREFIX_LEN: usize = 1 + 8;
pub const TAG_LEN: usize = 16;
/// The longest plaintext frame that still fits the MTU once sealed.
pub const MAX_SEALABLE_FRAME_LEN: usize = MAX_FRAME_LEN - SEAL_OVERHEAD;
const HANDSHAKE_PREFIX_LEN: usize = 1 + 2 + 1;
/// Bytes of handshake message per fragment: a full frame's worth.
pub const HANDSHAKE_CHUNK_LEN: usize = MAX_FRAME_LEN - HEADER_LEN - TRAILER_LEN - HANDSHAKE_PREFIX_LEN;
/// Most fragments one handshake message may have; the receiver's bitmap is this wide.
pub const HANDSHAKE_CHUNKS_MAX: usize = 8;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    Control = 1,
    Data = 2,
    /// Plaintext "I am here" multicast by nodes with link security: the only thing a
    /// neighbour is told before the handshake, and it is trusted for nothing but starting one.
    Beacon = 3,
    /// One fragment of a handshake message.
    Handshake = 4,
    /// A control or data frame under the link's AEAD.
    Sealed = 5,
}

impl FrameKind {
    fn from_u8(k: u8) -> Option<Self> {
        Some(match k {
            1 => FrameKind::Control,
            2 => FrameKind::Data,
            3 => FrameKind::Beacon,
            4 => FrameKind::Handshake,
            5 => FrameKind::Sealed,
            _ => return None,
        })
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: FrameKind,
    pub sender: NodeId,
}

/// One control message. All variants are plain values: decoding a control frame allocates
/// nothing and the router handles each TLV as it is read.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Tlv {
    /// Periodic liveness and link-quality beacon, multicast on every interface.
    Hello { seqno: u16, interval_ms: u16, incarnation: u32, timestamp_us: u32 },
    /// "I hear you": the receive cost of `addressee`'s hellos, plus an echo of its last hello
    /// timestamp and how long we held it, so the addressee can compute the round-trip time
    /// without synchronised clocks.
    Ihu {
        addressee: NodeId,
        addressee_incarnation: u32,
        rxcost: u16,
        echo_timestamp_us: u32,
        hold_us: u32,
    },
    /// A distance-vector advertisement of `dest` (the router id is the destination).
    Update { dest: NodeId, seqno: u16, metric: u16, interval_ms: u16 },
    /// Ask for the current route to `dest`.
    RouteRequest { dest: NodeId },
    /// Ask for every route the neighbour has (sent at boot).
    WildcardRequest,
    /// Ask the network for a route to `dest` with a sequence number of at least `seqno`
    /// (starvation recovery). `origin` lets forwarders suppress duplicates.
    SeqnoRequest { dest: NodeId, seqno: u16, hop_count: u8, origin: NodeId },
    /// Direct liveness probe used to confirm a suspicion before declaring a neighbour down.
    Ping { nonce: u32 },
    Pong { nonce: u32 },
    /// "Send audit probes to `dest` yourself and report how many came back": asked of a
    /// next hop that traffic through it does not get through (see `node::guard`).
    Audit { dest: NodeId, nonce: u32 },
    /// The answer to an [`Tlv::Audit`]: of `sent` probes (0: no route), `delivered` came
    /// back; they left through `next_hop`, on a route of `metric` (infinite: none).
    AuditReport { nonce: u32, delivered: u8, sent: u8, next_hop: NodeId, metric: u16 },
}

impl Tlv {
    const HELLO: u8 = 1;
    const IHU: u8 = 2;
    const UPDATE: u8 = 3;
    const ROUTE_REQUEST: u8 = 4;
    const WILDCARD_REQUEST: u8 = 5;
    const SEQNO_REQUEST: u8 = 6;
    const PING: u8 = 7;
    const PONG: u8 = 8;
    const AUDIT: u8 = 9;
    const AUDIT_REPORT: u8 = 10;

    fn type_and_len(&self) -> (u8, usize) {
        match self {
            Tlv::Hello { .. } => (Self::HELLO, 12),
            Tlv::Ihu { .. } => (Self::IHU, 18),
            Tlv::Update { .. } => (Self::UPDATE, 10),
            Tlv::RouteRequest { .. } => (Self::ROUTE_REQUEST, 4),
            Tlv::WildcardRequest => (Self::WILDCARD_REQUEST, 0),
            Tlv::SeqnoRequest { .. } => (Self::SEQNO_REQUEST, 11),
            Tlv::Ping { .. } => (Self::PING, 4),
            Tlv::Pong { .. } => (Self::PONG, 4),
            Tlv::Audit { .. } => (Self::AUDIT, 8),
            Tlv::AuditReport { .. } => (Self::AUDIT_REPORT, 12),
        }
    }

    /// Bytes this TLV occupies in a frame, including its type and length.
    pub fn encoded_len(&self) -> usize {
        2 + self.type_and_len().1
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let (ty, len) = self.type_and_len();
        out.push(ty);
        out.push(len as u8);
        let start = out.len();
        match *self {
            Tlv::Hello { seqno, interval_ms, incarnation, timestamp_us } => {
                out.extend_from_slice(&seqno.to_be_bytes());
                out.extend_from_slice(&interval_ms.to_be_bytes());
                out.extend_from_slice(&incarnation.to_be_bytes());
                out.extend_from_slice(&timestamp_us.to_be_bytes());
            }
            Tlv::Ihu { addressee, addressee_incarnation, rxcost, echo_timestamp_us, hold_us } => {
                out.extend_from_slice(&addressee.0.to_be_bytes());
                out.extend_from_slice(&addressee_incarnation.to_be_bytes());
                out.extend_from_slice(&rxcost.to_be_bytes());
                out.extend_from_slice(&echo_timestamp_us.to_be_bytes());
                out.extend_from_slice(&hold_us.to_be_bytes());
            }
            Tlv::Update { dest, seqno, metric, interval_ms } => {
                out.extend_from_slice(&dest.0.to_be_bytes());
                out.extend_from_slice(&seqno.to_be_bytes());
                out.extend_from_slice(&metric.to_be_bytes());
                out.extend_from_slice(&interval_ms.to_be_bytes());
            }
            Tlv::RouteRequest { dest } => out.extend_from_slice(&dest.0.to_be_bytes()),
            Tlv::WildcardRequest => {}
            Tlv::SeqnoRequest { dest, seqno, hop_count, origin } => {
                out.extend_from_slice(&dest.0.to_be_bytes());
                out.extend_from_slice(&seqno.to_be_bytes());
                out.push(hop_count);
                out.extend_from_slice(&origin.0.to_be_bytes());
            }
            Tlv::Ping { nonce } | Tlv::Pong { nonce } => out.extend_from_slice(&nonce.to_be_bytes()),
            Tlv::Audit { dest, nonce } => {
                out.extend_from_slice(&dest.0.to_be_bytes());
                out.extend_from_slice(&nonce.to_be_bytes());
            }
            Tlv::AuditReport { nonce, delivered, sent, next_hop, metric } => {
                out.extend_from_slice(&nonce.to_be_bytes());
                out.push(delivered);
                out.push(sent);
                out.extend_from_slice(&next_hop.0.to_be_bytes());
                out.extend_from_slice(&metric.to_be_bytes());
            }
        }
        debug_assert_eq!(out.len() - start, len, "TLV length table out of date");
    }

    fn decode(ty: u8, v: &[u8]) -> Result<Option<Tlv>, DecodeError> {
        let expect = |want: usize| {
            if v.len() == want { Ok(()) } else { Err(DecodeError::BadTlvLength { ty, len: v.len() }) }
        };
        let mut r = Reader::new(v);
        let tlv = match ty {
            Self::HELLO => {
                expect(12)?;
                Tlv::Hello {
                    seqno: r.u16()?,
                    interval_ms: r.u16()?,
                    incarnation: r.u32()?,
                    timestamp_us: r.u32()?,
                }
            }
            Self::IHU => {
                expect(18)?;
                Tlv::Ihu {
                    addressee: NodeId(r.u32()?),
                    addressee_incarnation: r.u32()?,
                    rxcost: r.u16()?,
                    echo_timestamp_us: r.u32()?,
                    hold_us: r.u32()?,
                }
            }
            Self::UPDATE => {
                expect(10)?;
                Tlv::Update {
                    dest: NodeId(r.u32()?),
                    seqno: r.u16()?,
                    metric: r.u16()?,
                    interval_ms: r.u16()?,
                }
            }
            Self::ROUTE_REQUEST => {
                expect(4)?;
                Tlv::RouteRequest { dest: NodeId(r.u32()?) }
            }
            Self::WILDCARD_REQUEST => {
                expect(0)?;
                Tlv::WildcardRequest
            }
            Self::SEQNO_REQUEST => {
                expect(11)?;
                Tlv::SeqnoRequest {
                    dest: NodeId(r.u32()?),
                    seqno: r.u16()?,
                    hop_count: r.u8()?,
                    origin: NodeId(r.u32()?),
                }
            }
            Self::PING => {
                expect(4)?;
                Tlv::Ping { nonce: r.u32()? }
            }
            Self::PONG => {
                expect(4)?;
                Tlv::Pong { nonce: r.u32()? }
            }
            Self::AUDIT => {
                expect(8)?;
                Tlv::Audit { dest: NodeId(r.u32()?), nonce: r.u32()? }
            }
            Self::AUDIT_REPORT => {
                expect(12)?;
                Tlv::AuditReport {
                    nonce: r.u32()?,
                    delivered: r.u8()?,
                    sent: r.u8()?,
                    next_hop: NodeId(r.u32()?),
                    metric: r.u16()?,
                }
            }
            t if t >= FIRST_OPTIONAL_TLV => return Ok(None),
            t => return Err(DecodeError::UnknownTlv(t)),
        };
        Ok(Some(tlv))
    }
}

/// What a data frame carries.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum DataClass {
    /// Application bytes.
    App = 0,
    /// End-to-end reachability probe; the destination answers with a [`DataClass::ProbeReply`].
    Probe = 1,
    ProbeReply = 2,
    /// A probe sent to test one next hop: its payload names that neighbour (the relay), and
    /// the destination answers with a [`DataClass::AuditEcho`] through the relay, so the
    /// echo comes back the way the relay's own probes do.
    AuditProbe = 3,
    /// The answer to an audit probe; its payload names the node that sent the probe.
    AuditEcho = 4,
}

/// A hop-by-hop forwarded packet. `payload` borrows from the received bytes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Data<'a> {
    pub src: NodeId,
    pub dst: NodeId,
    pub ttl: u8,
    pub class: DataClass,
    pub id: u64,
    /// The source's clock when it sent the probe, echoed back in the reply.
    pub origin_ts: u64,
    pub payload: &'a [u8],
}

/// Why a frame was rejected. Every variant names what was wrong so counters and logs can say
/// more than "bad packet".
#[derive(Copy, Clone, Debug, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("frame of {0} bytes is shorter than the {min} byte minimum", min = HEADER_LEN + TRAILER_LEN)]
    TooShort(usize),
    #[error("frame of {0} bytes exceeds the {MAX_FRAME_LEN} byte maximum")]
    TooLong(usize),
    #[error("bad magic {0:02x?}, expected \"x0\"")]
    BadMagic([u8; 2]),
    #[error("unsupported version {0}, this build speaks version {VERSION}")]
    UnsupportedVersion(u8),
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    #[error("body length {declared} disagrees with the {actual} bytes present")]
    LengthMismatch { declared: usize, actual: usize },
    #[error("checksum mismatch: frame says {declared:08x}, content hashes to {computed:08x}")]
    BadChecksum { declared: u32, computed: u32 },
    #[error("TLV at offset {offset} runs past the end of the frame")]
    TruncatedTlv { offset: usize },
    #[error("TLV type {ty} has length {len}, which is wrong for that type")]
    BadTlvLength { ty: u8, len: usize },
    #[error("unknown mandatory TLV type {0}")]
    UnknownTlv(u8),
    #[error("data frame is truncated")]
    TruncatedData,
    #[error("unknown data class {0}")]
    UnknownDataClass(u8),
    #[error("data payload length {declared} disagrees with the {actual} bytes present")]
    DataLengthMismatch { declared: usize, actual: usize },
    #[error("data frame with TTL 0")]
    ZeroTtl,
    #[error("beacon body of {0} bytes, expected 4")]
    BadBeacon(usize),
    #[error("handshake fragment {index} of a {message_len} byte message is malformed")]
    BadFragment { index: u8, message_len: u16 },
    #[error("sealed frame is too short to hold a counter and a tag")]
    TruncatedSealed,
    #[error("sealed frame carries inner kind {0}, which only travels in the clear or does not exist")]
    BadInnerKind(u8),
}

/// A bounds-checked big-endian cursor; the handshake's messages are read with it too.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    /// Bytes read so far.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos == self.bytes.len()
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(DecodeError::TruncatedData)?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        Ok(self.take(N)?.try_into().expect("take returned N bytes"))
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let s = self.take(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
}

/// Checks framing and checksum and returns the header and the body.
pub fn decode_frame(bytes: &[u8]) -> Result<(Header, &[u8]), DecodeError> {
    if bytes.len() < HEADER_LEN + TRAILER_LEN {
        return Err(DecodeError::TooShort(bytes.len()));
    }
    if bytes.len() > MAX_FRAME_LEN {
        return Err(DecodeError::TooLong(bytes.len()));
    }
    let (content, trailer) = bytes.split_at(bytes.len() - TRAILER_LEN);
    let declared = u32::from_be_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let computed = crc32fast::hash(content);
    if declared != computed {
        return Err(DecodeError::BadChecksum { declared, computed });
    }
    if content[0..2] != MAGIC {
        return Err(DecodeError::BadMagic([content[0], content[1]]));
    }
    if content[2] != VERSION {
        return Err(DecodeError::UnsupportedVersion(content[2]));
    }
    let kind = FrameKind::from_u8(content[3]).ok_or(DecodeError::UnknownKind(content[3]))?;
    let sender = NodeId(u32::from_be_bytes([content[4], content[5], content[6], content[7]]));
    let declared_len = usize::from(u16::from_be_bytes([content[8], content[9]]));
    let body = &content[HEADER_LEN..];
    if declared_len != body.len() {
        return Err(DecodeError::LengthMismatch { declared: declared_len, actual: body.len() });
    }
    Ok((Header { kind, sender }, body))
}

/// A frame's sender and, for a data frame, its destination, read without checking anything:
/// for hints that must cost less than a checksum (see `Node::datagram_memory`). On a corrupt
/// frame the answer may be wrong; [`decode_frame`] is what decides.
pub fn peek_frame(bytes: &[u8]) -> Option<(NodeId, Option<NodeId>)> {
    let u32_at = |at: usize| Some(NodeId(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?)));
    let sender = u32_at(4)?;
    let dst = if bytes.get(3) == Some(&(FrameKind::Data as u8)) { u32_at(HEADER_LEN + 4) } else { None };
    Some((sender, dst))
}

/// The destinations of a control body's update TLVs, in order, read without decoding or
/// checking anything else: for hints, like [`peek_frame`]. Hopping from TLV header to TLV
/// header costs a few instructions per TLV where decoding costs dozens, and the hint asks
/// for every frame twice. On a malformed body the answer may be wrong or cut short;
/// [`validate_control`] is what decides.
pub fn peek_update_dests(body: &[u8]) -> impl Iterator<Item = NodeId> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || {
        while let Some(&[ty, len, ..]) = body.get(pos..) {
            let value = pos + 2;
            pos = value + usize::from(len);
            if ty == Tlv::UPDATE {
                let dest = body.get(value..value + 4)?;
                return Some(NodeId(u32::from_be_bytes(dest.try_into().ok()?)));
            }
        }
        None
    })
}

/// Iterates the TLVs of a control body. Yields an error once and then stops.
pub struct TlvIter<'a> {
    body: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> TlvIter<'a> {
    pub fn new(body: &'a [u8]) -> Self {
        TlvIter { body, pos: 0, failed: false }
    }
}

impl Iterator for TlvIter<'_> {
    type Item = Result<Tlv, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.failed && self.pos < self.body.len() {
            let offset = self.pos;
            let rest = &self.body[offset..];
            if rest.len() < 2 || rest.len() < 2 + usize::from(rest[1]) {
                self.failed = true;
                return Some(Err(DecodeError::TruncatedTlv { offset }));
            }
            let (ty, len) = (rest[0], usize::from(rest[1]));
            self.pos += 2 + len;
            match Tlv::decode(ty, &rest[2..2 + len]) {
                Ok(Some(tlv)) => return Some(Ok(tlv)),
                Ok(None) => continue,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

/// Validates every TLV of a control body without acting on any. Receivers call this first so
/// that a frame with a bad TLV at the end is rejected whole, never half-applied.
pub fn validate_control(body: &[u8]) -> Result<usize, DecodeError> {
    let mut n = 0;
    for tlv in TlvIter::new(body) {
        tlv?;
        n += 1;
    }
    Ok(n)
}

pub fn decode_data(body: &[u8]) -> Result<Data<'_>, DecodeError> {
    let mut r = Reader::new(body);
    let src = NodeId(r.u32()?);
    let dst = NodeId(r.u32()?);
    let ttl = r.u8()?;
    let class = match r.u8()? {
        0 => DataClass::App,
        1 => DataClass::Probe,
        2 => DataClass::ProbeReply,
        3 => DataClass::AuditProbe,
        4 => DataClass::AuditEcho,
        c => return Err(DecodeError::UnknownDataClass(c)),
    };
    let id = r.u64()?;
    let origin_ts = r.u64()?;
    let declared = usize::from(r.u16()?);
    let actual = body.len() - DATA_HEADER_LEN;
    if declared != actual {
        return Err(DecodeError::DataLengthMismatch { declared, actual });
    }
    if ttl == 0 {
        return Err(DecodeError::ZeroTtl);
    }
    Ok(Data { src, dst, ttl, class, id, origin_ts, payload: &body[DATA_HEADER_LEN..] })
}

/// Builds one control frame in a caller-owned buffer, TLV by TLV.
pub struct ControlWriter;

impl ControlWriter {
    /// Starts a control frame in `out` (which is cleared).
    pub fn start(out: &mut Vec<u8>, sender: NodeId) {
        out.clear();
        write_header(out, FrameKind::Control, sender);
    }

    /// Whether `tlv` still fits in a frame under construction in `out`.
    pub fn fits(out: &[u8], tlv: &Tlv) -> bool {
        Self::fits_within(out, tlv, MAX_FRAME_LEN)
    }

    /// Whether `tlv` still fits in a frame of at most `frame_len_max` bytes: less than the
    /// MTU when the frame will be sealed.
    pub fn fits_within(out: &[u8], tlv: &Tlv, frame_len_max: usize) -> bool {
        out.len() + tlv.encoded_len() + TRAILER_LEN <= frame_len_max.min(MAX_FRAME_LEN)
    }

    /// Appends a TLV. The caller checks [`ControlWriter::fits`] first.
    pub fn push(out: &mut Vec<u8>, tlv: &Tlv) {
        debug_assert!(Self::fits(out, tlv), "control frame overflow");
        tlv.encode(out);
    }

    /// Whether the frame under construction holds no TLV yet.
    pub fn is_empty(out: &[u8]) -> bool {
        out.len() <= HEADER_LEN
    }

    /// Writes the body length and checksum. The frame in `out` is then complete.
    pub fn finish(out: &mut Vec<u8>) {
        finish_frame(out);
    }
}

/// Encodes a whole data frame into `out` (cleared first). Fails if the payload does not fit.
pub fn encode_data(out: &mut Vec<u8>, sender: NodeId, d: &Data<'_>) -> Result<(), PayloadTooLarge> {
    let max_payload = MAX_FRAME_LEN - HEADER_LEN - TRAILER_LEN - DATA_HEADER_LEN;
    if d.payload.len() > max_payload {
        return Err(PayloadTooLarge { len: d.payload.len(), max: max_payload });
    }
    out.clear();
    write_header(out, FrameKind::Data, sender);
    out.extend_from_slice(&d.src.0.to_be_bytes());
    out.extend_from_slice(&d.dst.0.to_be_bytes());
    out.push(d.ttl);
    out.push(d.class as u8);
    out.extend_from_slice(&d.id.to_be_bytes());
    out.extend_from_slice(&d.origin_ts.to_be_bytes());
    out.extend_from_slice(&(d.payload.len() as u16).to_be_bytes());
    out.extend_from_slice(d.payload);
    finish_frame(out);
    Ok(())
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Error)]
#[error("data payload of {len} bytes exceeds the {max} byte maximum")]
pub struct PayloadTooLarge {
    pub len: usize,
    pub max: usize,
}

/// Encodes a beacon into `out` (cleared first).
pub fn encode_beacon(out: &mut Vec<u8>, sender: NodeId, incarnation: u32) {
    out.clear();
    write_header(out, FrameKind::Beacon, sender);
    out.extend_from_slice(&incarnation.to_be_bytes());
    finish_frame(out);
}

pub fn decode_beacon(body: &[u8]) -> Result<u32, DecodeError> {
    let b: [u8; 4] = body.try_into().map_err(|_| DecodeError::BadBeacon(body.len()))?;
    Ok(u32::from_be_bytes(b))
}

/// One fragment of a handshake message, as received.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Fragment<'a> {
    pub message_kind: u8,
    pub message_len: u16,
    pub index: u8,
    pub chunk: &'a [u8],
}

impl Fragment<'_> {
    /// How many fragments a message of `message_len` bytes is cut into.
    pub fn count(message_len: usize) -> usize {
        message_len.div_ceil(HANDSHAKE_CHUNK_LEN)
    }
}

/// Encodes fragment `index` of handshake message `message` into `out` (cleared first).
pub fn encode_fragment(out: &mut Vec<u8>, sender: NodeId, message: &[u8], index: usize) {
    debug_assert!(Fragment::count(message.len()) <= HANDSHAKE_CHUNKS_MAX && index < Fragment::count(message.len()));
    let start = index * HANDSHAKE_CHUNK_LEN;
    let chunk = &message[start..(start + HANDSHAKE_CHUNK_LEN).min(message.len())];
    out.clear();
    write_header(out, FrameKind::Handshake, sender);
    out.push(message[0]);
    out.extend_from_slice(&(message.len() as u16).to_be_bytes());
    out.push(index as u8);
    out.extend_from_slice(chunk);
    finish_frame(out);
}

/// Reads a handshake fragment, checking that its chunk has exactly the length its index
/// implies: full-size, except the last.
pub fn decode_fragment(body: &[u8]) -> Result<Fragment<'_>, DecodeError> {
    let mut r = Reader::new(body);
    let message_kind = r.u8()?;
    let message_len = r.u16()?;
    let index = r.u8()?;
    let chunk = &body[HANDSHAKE_PREFIX_LEN..];
    let bad = DecodeError::BadFragment { index, message_len };
    let count = Fragment::count(usize::from(message_len));
    if message_len == 0 || count > HANDSHAKE_CHUNKS_MAX || usize::from(index) >= count {
        return Err(bad);
    }
    let start = usize::from(index) * HANDSHAKE_CHUNK_LEN;
    if chunk.len() != (usize::from(message_len) - start).min(HANDSHAKE_CHUNK_LEN) {
        return Err(bad);
    }
    Ok(Fragment { message_kind, message_len, index, chunk })
}

/// The parts of a sealed frame's body.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Sealed<'a> {
    pub epoch: u8,
    pub counter: u64,
    /// Associated data: every frame byte before the ciphertext.
    pub aad: &'a [u8],
    pub ciphertext: &'a [u8],
    pub tag: [u8; TAG_LEN],
}

/// Splits a sealed frame (the whole frame, already through [`decode_frame`]).
pub fn decode_sealed(frame: &[u8]) -> Result<Sealed<'_>, DecodeError> {
    let content = &frame[..frame.len() - TRAILER_LEN];
    let aad_len = HEADER_LEN + SEALED_PREFIX_LEN;
    if content.len() < aad_len + 1 + TAG_LEN {
        return Err(DecodeError::TruncatedSealed);
    }
    let (aad, rest) = content.split_at(aad_len);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
    let counter = u64::from_be_bytes(aad[HEADER_LEN + 1..].try_into().expect("8 bytes"));
    Ok(Sealed { epoch: aad[HEADER_LEN], counter, aad, ciphertext, tag: tag.try_into().expect("16 bytes") })
}

/// Writes the clear part of a sealed frame carrying `plain` (a whole control or data frame)
/// into `out`, followed by the inner kind and body still in clear. The caller encrypts
/// `out[aad_len..]` in place, then calls [`finish_sealed`] with the tag. Returns `aad_len`.
pub fn begin_sealed(out: &mut Vec<u8>, sender: NodeId, epoch: u8, counter: u64, plain: &[u8]) -> usize {
    debug_assert!(plain.len() <= MAX_SEALABLE_FRAME_LEN && plain.len() >= HEADER_LEN + TRAILER_LEN);
    let inner_body = &plain[HEADER_LEN..plain.len() - TRAILER_LEN];
    out.clear();
    write_header(out, FrameKind::Sealed, sender);
    let body_len = SEALED_PREFIX_LEN + 1 + inner_body.len() + TAG_LEN;
    out[8..10].copy_from_slice(&(body_len as u16).to_be_bytes());
    out.push(epoch);
    out.extend_from_slice(&counter.to_be_bytes());
    let aad_len = out.len();
    out.push(plain[3]);
    out.extend_from_slice(inner_body);
    aad_len
}

/// Appends the tag and the checksum: the sealed frame in `out` is complete.
pub fn finish_sealed(out: &mut Vec<u8>, tag: &[u8; TAG_LEN]) {
    out.extend_from_slice(tag);
    debug_assert_eq!(usize::from(u16::from_be_bytes([out[8], out[9]])), out.len() - HEADER_LEN);
    let crc = crc32fast::hash(out);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// The kind of a decrypted inner frame: only control and data travel sealed.
pub fn inner_kind(k: u8) -> Result<FrameKind, DecodeError> {
    match FrameKind::from_u8(k) {
        Some(kind @ (FrameKind::Control | FrameKind::Data)) => Ok(kind),
        _ => Err(DecodeError::BadInnerKind(k)),
    }
}

fn write_header(out: &mut Vec<u8>, kind: FrameKind, sender: NodeId) {
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(kind as u8);
    out.extend_from_slice(&sender.0.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
}

fn finish_frame(out: &mut Vec<u8>) {
    let body_len = out.len() - HEADER_LEN;
    debug_assert!(out.len() + TRAILER_LEN <= MAX_FRAME_LEN, "frame over MTU");
    out[8..10].copy_from_slice(&(body_len as u16).to_be_bytes());
    let crc = crc32fast::hash(out);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// Babel-style sequence number comparison modulo 2^16: `a` is newer than `b` when it is ahead
/// by less than half the space.
pub fn seqno_newer(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}
