//! The [`Scheduler`] trait: where background work runs.

use std::fmt;

use crate::{BoxFuture, Error};

/// A blocking job for [`Scheduler::spawn_blocking`].
pub type BlockingJob = Box<dyn FnOnce() + Send + 'static>;

/// Runs background work: stale-while-revalidate refreshes now, periodic
/// loaders with `bg`.
///
/// One implementation per async runtime, plus one on std threads so that
/// sync functions work in a program with no async runtime at all.
pub trait Scheduler: Send + Sync + fmt::Debug + 'static {
    /// Runs `task` to completion in the background.
    fn spawn(&self, task: BoxFuture<'static, ()>) -> Result<(), Error>;

    /// Runs a blocking `job` in the background, off the caller's thread.
    fn spawn_blocking(&self, job: BlockingJob) -> Result<(), Error>;
}
