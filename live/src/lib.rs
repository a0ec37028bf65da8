//! The live backend: `x0-node` drives the core's `Node` on real interfaces with tokio UDP.
//! No protocol logic lives here (ARCHITECTURE.md): only sockets, clocks, signals, and
//! serving metrics and events.

pub mod alive;
pub mod config;
pub mod daemon;
pub mod identity;
mod kernel;
mod keyfile;
pub mod metrics;
pub mod net;
mod serve;
pub mod lab;
pub mod xdp;
pub mod mesh;
mod replay;
pub mod babel;
pub mod trust;
