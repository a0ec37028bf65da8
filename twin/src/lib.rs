//! The console of x0tta6bl4, as a library: what the `x0` binary runs, callable from tests
//! and from the later digital twin. It sits at the top of the dependency graph (core ←
//! sim, live ← twin) and is the only crate that touches files, terminals and wall time.

pub mod bench;
pub mod compare;
pub mod files;
pub mod keys;
pub mod live;
pub mod peer;
pub mod merge;
pub mod out;
pub mod plot;
pub mod report;
pub mod run;
pub mod topo;
