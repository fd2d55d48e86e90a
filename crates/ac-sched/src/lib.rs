//! Clocks and schedulers for [advanced-caching](https://docs.rs/advanced-caching).
//!
//! - [`CoarseClock`]: production wall clock, one atomic load per read.
//! - [`ManualClock`]: test clock that moves only when told.
//! - [`ThreadScheduler`]: std-thread pool; sync functions need no runtime.
//! - `TokioScheduler` (feature `tokio`, default): async refreshes on tokio.
#![forbid(unsafe_code)]

mod clock;
mod thread;
#[cfg(feature = "tokio")]
mod tokio;

pub use clock::{COARSE_RESOLUTION, CoarseClock, ManualClock};
pub use thread::ThreadScheduler;
#[cfg(feature = "tokio")]
pub use tokio::TokioScheduler;
