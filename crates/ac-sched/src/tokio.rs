//! [`TokioScheduler`]: refreshes of async functions on the tokio runtime.

use ac_core::scheduler::{Every, JobHandle, Task, run_every};
use ac_core::{BlockingJob, BoxFuture, Error, Scheduler};
use tokio::runtime::Handle;

use crate::ThreadScheduler;

/// Spawns work on a tokio runtime: the one given to
/// [`TokioScheduler::with_handle`], else the runtime the caller runs in
/// (blocking jobs on its blocking pool, where tokio I/O still works).
/// Outside any runtime, work runs on [`ThreadScheduler::global`] (fine for
/// runtime-agnostic futures).
#[derive(Debug, Clone, Default)]
pub struct TokioScheduler {
    handle: Option<Handle>,
}

impl TokioScheduler {
    /// Spawns on the caller's current runtime.
    pub fn new() -> Self {
        Self { handle: None }
    }

    fn runtime(&self) -> Option<Handle> {
        self.handle.clone().or_else(|| Handle::try_current().ok())
    }

    /// Spawns on the runtime behind `handle`.
    pub fn with_handle(handle: Handle) -> Self {
        Self {
            handle: Some(handle),
        }
    }
}

impl Scheduler for TokioScheduler {
    fn spawn(&self, task: BoxFuture<'static, ()>) -> Result<(), Error> {
        match self.runtime() {
            Some(handle) => {
                drop(handle.spawn(task));
                Ok(())
            }
            None => ThreadScheduler::global().spawn(task),
        }
    }

    fn spawn_blocking(&self, job: BlockingJob) -> Result<(), Error> {
        match self.runtime() {
            Some(handle) => {
                drop(handle.spawn_blocking(job));
                Ok(())
            }
            None => ThreadScheduler::global().spawn_blocking(job),
        }
    }

    /// Async jobs run as a task on the runtime, blocking ones on a thread.
    fn every(&self, every: Every) -> Result<JobHandle, Error> {
        match (self.runtime(), &every.task) {
            (Some(handle), Task::Async(_)) => {
                let (job, control) = JobHandle::new();
                drop(handle.spawn(run_every(every, control, tokio::time::sleep)));
                Ok(job)
            }
            _ => ThreadScheduler::global().every(every),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn spawns_on_the_current_runtime() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        TokioScheduler::new()
            .spawn(Box::pin(async move {
                tx.send(Handle::try_current().is_ok()).unwrap();
            }))
            .unwrap();
        assert!(rx.await.unwrap(), "task ran outside the runtime");
    }

    #[test]
    fn without_a_runtime_async_work_still_runs() {
        let (tx, rx) = std::sync::mpsc::channel();
        TokioScheduler::new()
            .spawn(Box::pin(async move { tx.send(1).unwrap() }))
            .unwrap();
        assert_eq!(
            rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap(),
            1
        );
    }
}
