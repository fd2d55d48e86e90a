//! [`SmolScheduler`]: refreshes of async functions on smol.

use ac_core::scheduler::{Every, JobHandle, Task, run_every};
use ac_core::{BlockingJob, BoxFuture, Error, Scheduler};

use crate::ThreadScheduler;

/// Spawns async work on smol's global executor; blocking jobs go to
/// [`ThreadScheduler::global`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SmolScheduler;

impl SmolScheduler {
    /// The smol scheduler.
    pub fn new() -> Self {
        Self
    }
}

impl Scheduler for SmolScheduler {
    fn spawn(&self, task: BoxFuture<'static, ()>) -> Result<(), Error> {
        smol::spawn(task).detach();
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
        let sleep = |delay| async move {
            smol::Timer::after(delay).await;
        };
        smol::spawn(run_every(every, control, sleep)).detach();
        Ok(job)
    }
}
