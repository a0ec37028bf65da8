//! Areas: the scale path of routing. Flat distance-vector routing keeps one entry per
//! destination in every node, so state and periodic traffic grow as N per node and N² in
//! total; at 3,000 nodes that is already 800 kB per node. With an [`AreaPlan`], node ids are
//! grouped into areas by contiguous ranges (as addresses are grouped into prefixes), and a
//! node keeps routes only to the nodes of its own area and to every *other area* as a
//! whole: about `N / A + A` entries for areas of `A` nodes, `2·√N` at best.
//!
//! Forwarding to a node `d` is then a function of the forwarding node alone:
//! - in `d`'s area, the route to `d` (none: unreachable);
//! - elsewhere, the route to `d`'s area, which every member originates at metric 0, so it
//!   leads to the nearest member.
//!
//! Both kinds of route obey Babel's feasibility condition, so each is loop-free on its own,
//! and a packet's path is a run of area-route hops outside the area followed by a run of
//! node-route hops inside it, never back: members hold no area route for their own area and
//! outsiders hold no route to members. See ARCHITECTURE.md for what this trades away.

use crate::ids::NodeId;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use thiserror::Error;

/// Ids with this bit set name areas, not nodes: `NodeId(AREA_BIT | k)` is area `k`. With an
/// area plan, node ids must be below it.
pub const AREA_BIT: u32 = 1 << 31;

/// Whether `id` names an area rather than a node.
pub const fn is_area(id: NodeId) -> bool {
    id.0 & AREA_BIT != 0
}

/// The routing-table id of area `k`.
pub const fn area_id(k: u32) -> NodeId {
    NodeId(AREA_BIT | k)
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AreaPlanError {
    #[error("is empty; give the first node id of every area, starting with 0")]
    Empty,
    #[error("must start with 0 (it starts with {0}), so that every node id is in an area")]
    FirstNotZero(u32),
    #[error("must be strictly increasing, but {prev} is followed by {next}")]
    NotIncreasing { prev: u32, next: u32 },
    #[error("contains {0}, which is not below 2^31 (ids with the top bit set name areas)")]
    TooLarge(u32),
}

/// Area `k` holds node ids `starts[k] .. starts[k + 1]` (the last area: up to 2^31). Shared,
/// because every node of a simulation holds the same plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<u32>", into = "Vec<u32>")]
pub struct AreaPlan {
    starts: Arc<[u32]>,
    /// The area of id `b << shift`, for every `b` up to the last area's start: an id's area
    /// is then between those of its bucket's two ends, and with buckets no wider than the
    /// narrowest area that is one or two areas. Forwarding and the simulator's loop checker
    /// find an id's area for nearly every foreign destination they look up: with a hundred
    /// areas a binary search took seven steps, three times per loop-checker lookup.
    index: Arc<[u32]>,
    shift: u32,
}

/// Index buckets at most: 256 kB, for a plan of many small areas or one spread over a
/// wide id range (its buckets are then wider than its narrowest area, and a lookup searches
/// the few areas a bucket meets).
const INDEX_BUCKETS_MAX: u32 = 1 << 16;

impl TryFrom<Vec<u32>> for AreaPlan {
    type Error = AreaPlanError;

    fn try_from(starts: Vec<u32>) -> Result<Self, AreaPlanError> {
        match starts.first() {
            None => return Err(AreaPlanError::Empty),
            Some(&first) if first != 0 => return Err(AreaPlanError::FirstNotZero(first)),
            Some(_) => {}
        }
        if let Some(w) = starts.windows(2).find(|w| w[0] >= w[1]) {
            return Err(AreaPlanError::NotIncreasing { prev: w[0], next: w[1] });
        }
        if let Some(&last) = starts.last()
            && last >= AREA_BIT
        {
            return Err(AreaPlanError::TooLarge(last));
        }
        let last = *starts.last().expect("checked non-empty");
        let narrowest = starts.windows(2).map(|w| w[1] - w[0]).min().unwrap_or(AREA_BIT);
        let mut shift = narrowest.ilog2();
        while last >> shift >= INDEX_BUCKETS_MAX {
            shift += 1;
        }
        let index = (0..=last >> shift).map(|b| area_by_search(&starts, b << shift)).collect();
        Ok(AreaPlan { starts: starts.into(), index, shift })
    }
}

/// The area holding `id` in `starts`, by binary search (`starts[0] == 0`, so the point is
/// at least 1).
fn area_by_search(starts: &[u32], id: u32) -> u32 {
    (starts.partition_point(|&s| s <= id) - 1) as u32
}

impl From<AreaPlan> for Vec<u32> {
    fn from(plan: AreaPlan) -> Vec<u32> {
        plan.starts.to_vec()
    }
}

impl AreaPlan {
    /// The area holding node `id` (`id` below [`AREA_BIT`]).
    pub fn area_of(&self, id: NodeId) -> u32 {
        debug_assert!(!is_area(id), "{id:?} is an area, not a node");
        let bucket = (id.0 >> self.shift) as usize;
        let last = self.starts.len() as u32 - 1;
        let Some(&low) = self.index.get(bucket) else { return last };
        let high = self.index.get(bucket + 1).copied().unwrap_or(last);
        low + area_by_search(&self.starts[low as usize..=high as usize], id.0)
    }

    pub fn areas(&self) -> u32 {
        self.starts.len() as u32
    }

    /// The first node id of every area.
    pub fn starts(&self) -> &[u32] {
        &self.starts
    }
}
