//! The routing table's map from destination to entry, indexed without hashing for the ids
//! a node is expected to hold.
//!
//! Every forwarded packet, and in the simulator every step of the loop checker, looks a
//! destination up in the table of a node whose memory is cold. A hash map costs a miss on
//! its control bytes, one on its index and one on the entry; here the ids a node holds
//! most of are turned into array positions by arithmetic (with areas: its own area's
//! members, which are a contiguous id range, and every area; flat: ids from 0), so a lookup
//! costs the index slot and the entry. Other ids (the halo of other areas' nodes, ids
//! beyond `DENSE_KEYS_MAX`) go through a small hash map, behind a filter that turns most
//! lookups of ids the node does not hold away without touching it.
//!
//! Entries stay in insertion order, and `retain` keeps the order of what it keeps, exactly
//! as `IndexMap` did: dumps walk the table in this order, so it is part of the trace.

use crate::area::{self, AreaPlan};
use crate::ids::NodeId;
use indexmap::IndexMap;
use rustc_hash::FxBuildHasher;

/// Dense index slots a table may grow to: 256 kB per node at most. Ids that would need a
/// slot beyond it are hashed instead.
const DENSE_KEYS_MAX: u32 = 1 << 16;
const NONE: u32 = u32::MAX;

/// Which ids get a dense slot, and where.
#[derive(Copy, Clone, Debug)]
enum Layout {
    /// Flat routing: node id `i` at slot `i`.
    Flat,
    /// Areas: area `k` at slot `k` (`k < areas`), then the members of our area, which
    /// start at id `first`, in id order.
    Areas { areas: u32, first: u32, members: u32 },
}

pub(crate) struct DestMap<V> {
    entries: Vec<(NodeId, V)>,
    /// Position in `entries` by dense slot, `NONE` where absent. Grows to the highest slot
    /// inserted, so a node that never hears of high ids pays nothing for them.
    dense: Vec<u32>,
    /// Never iterated; an `IndexMap` only because the core holds no std hash map.
    sparse: IndexMap<NodeId, u32, FxBuildHasher>,
    /// One bit per hash bucket of the ids in `sparse`: a clear bit proves an id absent
    /// without reading the map. With areas, most ids a node looks up (forwarding, the
    /// loop checker) belong to other areas and are not held, and probing the map for
    /// them was two cache misses each.
    sparse_filter: [u64; SPARSE_FILTER_BITS / 64],
    layout: Layout,
}

/// 32 bytes. At 10,000 nodes (scale-10k, 9 s) the filter answered 32 M lookups alone; 3.8 M
/// reached the map, 1 M of them for ids it does not hold.
const SPARSE_FILTER_BITS: usize = 256;

/// The filter bit for `id`: the top bits of a multiplicative hash, so that consecutive ids
/// (a neighbouring area's members) spread over the whole filter.
fn filter_bit(id: NodeId) -> (usize, u64) {
    let h = (u64::from(id.0).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SPARSE_FILTER_BITS.ilog2())) as usize;
    (h / 64, 1 << (h % 64))
}

impl<V> DestMap<V> {
    /// A map for a node routing flat (`plan` is `None`) or by areas, as a member of `area`.
    pub fn new(plan: Option<(&AreaPlan, u32)>) -> Self {
        let layout = match plan {
            None => Layout::Flat,
            Some((plan, area)) => {
                let first = plan.starts()[area as usize];
                let end = plan.starts().get(area as usize + 1).copied().unwrap_or(area::AREA_BIT);
                Layout::Areas { areas: plan.areas(), first, members: end - first }
            }
        };
        DestMap { entries: Vec::new(), dense: Vec::new(), sparse: IndexMap::default(), sparse_filter: Default::default(), layout }
    }

    /// `id`'s dense slot, whether or not it is held: its place in arrays kept beside the
    /// map (the routing table's forwarding table).
    pub fn slot(&self, id: NodeId) -> Option<usize> {
        let slot = match self.layout {
            Layout::Flat if area::is_area(id) => return None,
            Layout::Flat => id.0,
            Layout::Areas { areas, .. } if area::is_area(id) => Some(id.0 & !area::AREA_BIT).filter(|&k| k < areas)?,
            Layout::Areas { areas, first, members } => areas + id.0.checked_sub(first).filter(|&m| m < members)?,
        };
        (slot < DENSE_KEYS_MAX).then_some(slot as usize)
    }

    /// The position of `id`'s entry in insertion order.
    pub fn index_of(&self, id: NodeId) -> Option<usize> {
        let i = match self.slot(id) {
            Some(s) => *self.dense.get(s)?,
            None => {
                let (word, bit) = filter_bit(id);
                if self.sparse_filter[word] & bit == 0 {
                    return None;
                }
                *self.sparse.get(&id)?
            }
        };
        (i != NONE).then_some(i as usize)
    }

    /// Where `id`'s position is kept, when arithmetic finds it: reading nothing, so a driver
    /// can fetch it ahead (see `Node::datagram_memory`).
    pub fn index_cell(&self, id: NodeId) -> Option<&u32> {
        self.dense.get(self.slot(id)?)
    }

    pub fn get(&self, id: NodeId) -> Option<&V> {
        self.index_of(id).map(|i| &self.entries[i].1)
    }

    pub fn get_mut(&mut self, id: NodeId) -> Option<&mut V> {
        self.index_of(id).map(|i| &mut self.entries[i].1)
    }

    pub fn contains_key(&self, id: NodeId) -> bool {
        self.index_of(id).is_some()
    }

    /// Adds `id`, which must be absent, at the end; returns its position.
    pub fn insert_new(&mut self, id: NodeId, value: V) -> usize {
        debug_assert!(!self.contains_key(id), "{id:?} is already in the table");
        let i = self.entries.len();
        self.entries.push((id, value));
        self.link(id, i as u32);
        i
    }

    fn link(&mut self, id: NodeId, i: u32) {
        match self.slot(id) {
            Some(s) => {
                if s >= self.dense.len() {
                    self.dense.resize(s + 1, NONE);
                }
                self.dense[s] = i;
            }
            None => {
                self.sparse.insert(id, i);
                let (word, bit) = filter_bit(id);
                self.sparse_filter[word] |= bit;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn get_index(&self, i: usize) -> Option<(NodeId, &V)> {
        self.entries.get(i).map(|(k, v)| (*k, v))
    }

    pub fn get_index_mut(&mut self, i: usize) -> Option<&mut V> {
        self.entries.get_mut(i).map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (NodeId, &V)> {
        self.entries.iter().map(|(k, v)| (*k, v))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (NodeId, &mut V)> {
        self.entries.iter_mut().map(|(k, v)| (*k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.entries.iter().map(|(k, _)| *k)
    }

    /// Keeps the entries `keep` accepts, in their order; positions after a removed one move.
    pub fn retain(&mut self, mut keep: impl FnMut(NodeId, &mut V) -> bool) {
        let before = self.entries.len();
        self.entries.retain_mut(|(k, v)| keep(*k, v));
        if self.entries.len() == before {
            return;
        }
        self.dense.fill(NONE);
        self.sparse.clear();
        self.sparse_filter = Default::default();
        for i in 0..self.entries.len() {
            self.link(self.entries[i].0, i as u32);
        }
    }

    /// Heap bytes held (capacity, not length).
    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * size_of::<(NodeId, V)>()
            + self.dense.capacity() * size_of::<u32>()
            // An IndexMap: (hash, key, value) entries, and an index of `usize` plus a control
            // byte per bucket.
            + self.sparse.capacity() * (size_of::<(u64, NodeId, u32)>() + size_of::<usize>() + 1)
    }
}

// Not a simulator test (those live in `tests/`): the map against the `IndexMap` it
// replaced, which it must match entry for entry and in order, since dumps follow it.
#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Insert(NodeId),
        Retain(u32),
    }

    /// Ids of every kind a table meets: members of area 1 (ids 100..250), nodes of other
    /// areas below and above it, areas in and out of the plan, ids past the dense limit.
    fn id() -> impl Strategy<Value = NodeId> {
        prop_oneof![
            (0u32..400).prop_map(NodeId),
            (0u32..6).prop_map(area::area_id),
            (DENSE_KEYS_MAX - 4..DENSE_KEYS_MAX + 300).prop_map(NodeId),
            (area::AREA_BIT - 3..area::AREA_BIT).prop_map(NodeId),
        ]
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        prop::collection::vec(prop_oneof![8 => id().prop_map(Op::Insert), 1 => (2u32..5).prop_map(Op::Retain)], 0..300)
    }

    fn check(plan: Option<(&AreaPlan, u32)>, ops: &[Op]) -> Result<(), TestCaseError> {
        let mut map = DestMap::new(plan);
        let mut model: IndexMap<NodeId, u32, FxBuildHasher> = IndexMap::default();
        for (n, op) in ops.iter().enumerate() {
            match *op {
                Op::Insert(id) if !model.contains_key(&id) => {
                    model.insert(id, n as u32);
                    prop_assert_eq!(map.insert_new(id, n as u32), model.len() - 1);
                }
                Op::Insert(_) => {}
                Op::Retain(m) => {
                    model.retain(|_, v| *v % m != 0);
                    map.retain(|_, v| *v % m != 0);
                }
            }
            prop_assert_eq!(map.len(), model.len());
        }
        prop_assert!(map.iter().map(|(k, v)| (k, *v)).eq(model.iter().map(|(k, v)| (*k, *v))));
        for id in (0..400).map(NodeId).chain((0..8).map(area::area_id)).chain([NodeId(DENSE_KEYS_MAX + 1)]) {
            prop_assert_eq!(map.get(id), model.get(&id));
            prop_assert_eq!(map.index_of(id), model.get_index_of(&id));
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn matches_an_index_map_with_areas(ops in ops(), area in 0u32..4) {
            let plan = AreaPlan::try_from(vec![0, 100, 250, 300]).expect("a valid plan");
            check(Some((&plan, area)), &ops)?;
        }

        #[test]
        fn matches_an_index_map_flat(ops in ops()) {
            check(None, &ops)?;
        }
    }
}
