//! [`AsyncStdScheduler`]: refreshes of async functions on async-std.

use ac_core::scheduler::{Every, JobHandle, Task, run_every};
use ac_core::{BlockingJob, BoxFuture, Error, Scheduler};

use crate::ThreadScheduler;

/// Spawns async work on async-std's global executor; blocking jobs go to
/// [`ThreadScheduler::global`].
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncStdScheduler;

impl AsyncStdScheduler {
    /// The async-std scheduler.
    pub fn new() -> Self {
        Self
    }
}

impl Scheduler for AsyncStdScheduler {
    fn spawn(&self, task: BoxFuture<'static, ()>) -> Result<(), Error> {
        drop(async_std::task::spawn(task));
        Ok(())
    }

    fn spawn_blocking(&self, job: BlockingJob) -> Result<(), Error> {
        ThreadScheduler::global().spawn_blocking(job)
    }

    fn every(&self, every: Every) -> Result<JobHandle, Error> {
        if let Task::Blocking(_) = every.task {
            return ThreadScheduler::global().every(every);
        }
        let (job, control) = JobHandle::new();
        drop(async_std::task::spawn(run_every(
            every,
            control,
            async_std::task::sleep,
        )));
        Ok(job)
    }
}
