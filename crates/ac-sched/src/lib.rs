//! Clocks and schedulers for [advanced-caching](https://docs.rs/advanced-caching).
//!
//! - [`CoarseClock`]: production wall clock, one atomic load per read, and
//!   [`ManualClock`]: test clock that moves only when told; both defined in
//!   `ac_core::clock` (stores need no scheduler crate) and re-exported here.
//! - [`ThreadScheduler`]: std-thread pool; sync functions need no runtime.
//! - `TokioScheduler` (feature `tokio`, default), `AsyncStdScheduler`
//!   (feature `async-std`), `SmolScheduler` (feature `smol`): async work on
//!   each runtime.
#![forbid(unsafe_code)]

#[cfg(feature = "async-std")]
mod async_std;
#[cfg(feature = "smol")]
mod smol;
mod thread;
#[cfg(feature = "tokio")]
mod tokio;

pub use ac_core::clock::{COARSE_RESOLUTION, CoarseClock, ManualClock};
#[cfg(feature = "async-std")]
pub use async_std::AsyncStdScheduler;
#[cfg(feature = "smol")]
pub use smol::SmolScheduler;
pub use thread::{PERIODIC_THREAD_NAME, ThreadScheduler};
#[cfg(feature = "tokio")]
pub use tokio::TokioScheduler;
