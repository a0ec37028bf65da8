//! Frames waiting for the driver, without an allocation per frame.
//!
//! Control TLVs are staged per (interface, destination) while one input is handled, so that a
//! hello, its IHUs and any triggered updates share one frame, as Babel bundles them. `seal`
//! moves staged frames into a byte arena; `pop` copies one out to the driver. Buffers are
//! reused: once warm, the outbox allocates nothing.

use crate::ids::{Dest, IfIndex, NodeId};
use crate::wire::{self, ControlWriter, Data, Tlv};
use std::collections::VecDeque;

/// What a frame carries, for overhead accounting.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TrafficClass {
    Control,
    Data,
    /// Beacons and handshake fragments: the clear-text part of link security.
    Handshake,
}

/// One frame for the driver to send: the bytes were written into the caller's buffer.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub iface: IfIndex,
    pub dest: Dest,
    pub class: TrafficClass,
}

/// Staging key for "every interface": one encoding, replicated at seal time.
const ALL_IFACES: IfIndex = IfIndex(u16::MAX);

#[derive(Debug)]
struct Staging {
    iface: IfIndex,
    dest: Dest,
    buf: Vec<u8>,
    active: bool,
}

/// A FIFO of byte strings with `Copy` metadata, stored back to back in one reused buffer.
#[derive(Debug)]
pub(crate) struct ByteQueue<M: Copy> {
    arena: Vec<u8>,
    queue: VecDeque<(M, u32, u16)>,
    max_items: usize,
}

impl<M: Copy> ByteQueue<M> {
    pub fn new(max_items: usize) -> Self {
        ByteQueue { arena: Vec::new(), queue: VecDeque::new(), max_items }
    }

    /// Appends an item. Returns false, storing nothing, when the queue is full.
    pub fn push(&mut self, meta: M, bytes: &[u8]) -> bool {
        self.push_shared(std::iter::once(meta), bytes) == 1
    }

    /// Appends one item per `meta`, all with the same bytes, which are stored once: a
    /// multicast frame goes out on every interface, and a full route dump on eight
    /// interfaces would otherwise hold eight copies. Returns how many items fit; the rest
    /// are refused.
    pub fn push_shared(&mut self, metas: impl Iterator<Item = M>, bytes: &[u8]) -> usize {
        debug_assert!(bytes.len() <= usize::from(u16::MAX));
        let start = self.arena.len() as u32;
        let mut pushed = 0;
        for meta in metas {
            if self.queue.len() >= self.max_items {
                break;
            }
            self.queue.push_back((meta, start, bytes.len() as u16));
            pushed += 1;
        }
        if pushed > 0 {
            self.arena.extend_from_slice(bytes);
        }
        pushed
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn heap_bytes(&self) -> usize {
        self.arena.capacity() + self.queue.capacity() * size_of::<(M, u32, u16)>()
    }

    /// Copies the oldest item into `buf` (replacing its contents).
    pub fn pop(&mut self, buf: &mut Vec<u8>) -> Option<M> {
        let (meta, start, len) = self.queue.pop_front()?;
        let start = start as usize;
        buf.clear();
        buf.extend_from_slice(&self.arena[start..start + usize::from(len)]);
        if self.queue.is_empty() {
            // Everything handed out: reuse the buffer from the start.
            self.arena.clear();
        }
        Some(meta)
    }

}

/// An outbox's buffers, with nothing in them: what a driver lends a node (see
/// `Node::exchange_buffers`). Only an idle outbox exchanges them, so they are empty by
/// construction.
#[derive(Debug, Default)]
pub(crate) struct OutboxBuffers {
    staging: Vec<Staging>,
    arena: Vec<u8>,
    queue: VecDeque<(Transmit, u32, u16)>,
}

#[derive(Debug)]
pub(crate) struct Outbox {
    sender: NodeId,
    /// Control frames are cut at this length: the MTU, or less when they will be sealed.
    frame_len_max: usize,
    staging: Vec<Staging>,
    /// Whether any staging entry is active. Most inputs stage nothing (a hello heard), and
    /// sealing then need not read the staging table, which at 10,000 nodes is a cache miss
    /// on every input.
    staged: bool,
    queue: ByteQueue<Transmit>,
    /// Frames refused because the queue was full.
    pub dropped: u64,
    /// Bytes queued, by class.
    pub control_bytes: u64,
    pub data_bytes: u64,
}

impl Outbox {
    pub fn new(sender: NodeId, max_frames: usize, frame_len_max: usize) -> Self {
        Outbox {
            sender,
            frame_len_max,
            staging: Vec::new(),
            staged: false,
            queue: ByteQueue::new(max_frames),
            dropped: 0,
            control_bytes: 0,
            data_bytes: 0,
        }
    }

    pub fn frame_len_max(&self) -> usize {
        self.frame_len_max
    }

    /// Stages a TLV for one interface.
    pub fn push(&mut self, iface: IfIndex, dest: Dest, tlv: Tlv, ifaces: usize) {
        debug_assert!(iface != ALL_IFACES);
        self.stage(iface, dest, tlv, ifaces);
    }

    /// Stages a multicast TLV for every interface.
    pub fn push_all(&mut self, tlv: Tlv, ifaces: usize) {
        self.stage(ALL_IFACES, Dest::Multicast, tlv, ifaces);
    }

    fn stage(&mut self, iface: IfIndex, dest: Dest, tlv: Tlv, ifaces: usize) {
        self.staged = true;
        let idx = match self.staging.iter().position(|s| s.active && s.iface == iface && s.dest == dest) {
            Some(i) => i,
            None => {
                let i = match self.staging.iter().position(|s| !s.active) {
                    Some(i) => i,
                    None => {
                        self.staging.push(Staging { iface, dest, buf: Vec::new(), active: false });
                        self.staging.len() - 1
                    }
                };
                let s = &mut self.staging[i];
                s.iface = iface;
                s.dest = dest;
                s.active = true;
                ControlWriter::start(&mut s.buf, self.sender);
                i
            }
        };
        if !ControlWriter::fits_within(&self.staging[idx].buf, &tlv, self.frame_len_max) {
            self.seal_one(idx, ifaces);
            let s = &mut self.staging[idx];
            s.active = true;
            ControlWriter::start(&mut s.buf, self.sender);
        }
        ControlWriter::push(&mut self.staging[idx].buf, &tlv);
    }

    /// Moves every staged frame to the send queue. Called at the end of each input.
    pub fn seal(&mut self, ifaces: usize) {
        if !std::mem::take(&mut self.staged) {
            debug_assert!(self.staging.iter().all(|s| !s.active), "a staged frame was not flagged");
            return;
        }
        for i in 0..self.staging.len() {
            if self.staging[i].active {
                self.seal_one(i, ifaces);
            }
        }
    }

    fn seal_one(&mut self, idx: usize, ifaces: usize) {
        let mut buf = std::mem::take(&mut self.staging[idx].buf);
        let (iface, dest) = (self.staging[idx].iface, self.staging[idx].dest);
        self.staging[idx].active = false;
        if !ControlWriter::is_empty(&buf) {
            ControlWriter::finish(&mut buf);
            if iface == ALL_IFACES {
                self.enqueue((0..ifaces).map(|i| IfIndex(i as u16)), dest, TrafficClass::Control, &buf);
            } else {
                self.enqueue(std::iter::once(iface), dest, TrafficClass::Control, &buf);
            }
        }
        self.staging[idx].buf = buf;
    }

    /// Queues a complete data frame. Returns false if it was dropped.
    pub fn push_data(&mut self, iface: IfIndex, dest: Dest, data: &Data<'_>, scratch: &mut Vec<u8>) -> bool {
        if wire::encode_data(scratch, self.sender, data).is_err() || scratch.len() > self.frame_len_max {
            return false;
        }
        self.enqueue(std::iter::once(iface), dest, TrafficClass::Data, scratch)
    }

    /// Queues a complete frame the caller encoded (beacons, handshake fragments).
    pub fn push_frame(&mut self, iface: IfIndex, dest: Dest, class: TrafficClass, frame: &[u8]) -> bool {
        self.enqueue(std::iter::once(iface), dest, class, frame)
    }

    /// Queues `frame` once per interface in `ifaces`. Returns false if any copy was dropped.
    fn enqueue(&mut self, ifaces: impl ExactSizeIterator<Item = IfIndex>, dest: Dest, class: TrafficClass, frame: &[u8]) -> bool {
        debug_assert!(frame.len() <= wire::MAX_FRAME_LEN);
        let wanted = ifaces.len();
        let sent = self.queue.push_shared(ifaces.map(|iface| Transmit { iface, dest, class }), frame);
        self.dropped += (wanted - sent) as u64;
        let bytes = (sent * frame.len()) as u64;
        match class {
            TrafficClass::Control | TrafficClass::Handshake => self.control_bytes += bytes,
            TrafficClass::Data => self.data_bytes += bytes,
        }
        sent == wanted
    }

    /// Whether nothing is staged or queued: between inputs, once the driver has taken every
    /// frame.
    pub fn is_idle(&self) -> bool {
        !self.staged && self.queue.is_empty()
    }

    /// Swaps this idle outbox's buffers for `buffers`.
    pub fn exchange_buffers(&mut self, buffers: &mut OutboxBuffers) {
        debug_assert!(self.is_idle(), "only an idle outbox lends its buffers");
        debug_assert!(self.queue.arena.is_empty() && buffers.arena.is_empty() && buffers.queue.is_empty());
        std::mem::swap(&mut self.staging, &mut buffers.staging);
        std::mem::swap(&mut self.queue.arena, &mut buffers.arena);
        std::mem::swap(&mut self.queue.queue, &mut buffers.queue);
    }

    pub fn heap_bytes(&self) -> usize {
        self.staging.capacity() * size_of::<Staging>()
            + self.staging.iter().map(|s| s.buf.capacity()).sum::<usize>()
            + self.queue.heap_bytes()
    }

    /// Copies the next frame into `buf` (replacing its contents).
    pub fn pop(&mut self, buf: &mut Vec<u8>) -> Option<Transmit> {
        self.queue.pop(buf)
    }

}
