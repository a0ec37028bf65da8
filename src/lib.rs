//! The sans-IO core of x0tta6bl4: the protocol [`node::Node`], the scenario model and the
//! metric definitions. Pure logic: no clock, no socket, no thread, no unseeded randomness.
//! The simulator (`x0-sim`) and the live daemon drive this same code; see ARCHITECTURE.md.

pub mod area;
pub mod config;
pub mod eventlog;
pub mod ids;
pub mod metrics;
pub mod node;
pub mod pq;
pub mod scenario;
pub mod secure;
pub mod time;
pub mod trace;
pub mod units;
pub mod wire;
