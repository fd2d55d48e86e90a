//! The [`Scheduler`] trait: where background work runs, once or periodically.

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::thread::JoinHandle;
use std::time::Duration;

use event_listener::{Event, Listener};

use crate::{BoxFuture, Clock, Error};

/// A blocking job for [`Scheduler::spawn_blocking`].
pub type BlockingJob = Box<dyn FnOnce() + Send + 'static>;

/// The work of a periodic job, run once per tick.
#[derive(Clone)]
pub enum Task {
    /// An async function, run on the scheduler's runtime.
    Async(Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>),
    /// A blocking function, run on a thread of its own.
    Blocking(Arc<dyn Fn() + Send + Sync>),
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Async(_) => "Task::Async",
            Self::Blocking(_) => "Task::Blocking",
        })
    }
}

/// A periodic job for [`Scheduler::every`]: run `task` at `start`, then
/// every `interval` seconds, measured by `clock`.
#[derive(Debug, Clone)]
pub struct Every {
    /// Seconds between runs (start to start); positive.
    pub interval: f64,
    /// When the first run is due, in the clock's Unix seconds. Absolute, so
    /// that the time the job takes to start does not shift its schedule.
    pub start: f64,
    /// The clock ticks are measured with; a test clock drives them through
    /// [`Clock::alarm`].
    pub clock: Arc<dyn Clock>,
    /// What runs.
    pub task: Task,
}

/// Runs background work: stale-while-revalidate refreshes and `bg` loaders.
///
/// One implementation per async runtime, plus one on std threads so that
/// sync functions work in a program with no async runtime at all.
pub trait Scheduler: Send + Sync + fmt::Debug + 'static {
    /// Runs `task` to completion in the background.
    fn spawn(&self, task: BoxFuture<'static, ()>) -> Result<(), Error>;

    /// Runs a blocking `job` in the background, off the caller's thread.
    fn spawn_blocking(&self, job: BlockingJob) -> Result<(), Error>;

    /// Runs a periodic job until its [`JobHandle`] is stopped or dropped.
    /// Implementations drive it with [`run_every`].
    fn every(&self, every: Every) -> Result<JobHandle, Error>;
}

#[derive(Default)]
struct JobState {
    stopped: AtomicBool,
    stop: Event,
    finished: AtomicBool,
    done: Event,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Controls a periodic job. Dropping the handle stops the job (a run in
/// progress completes first).
#[must_use = "dropping a JobHandle stops its job"]
pub struct JobHandle {
    state: Arc<JobState>,
}

/// The job's side of a [`JobHandle`]: passed to [`run_every`]. When the
/// last clone is dropped, the job counts as finished, however it ended: a
/// completed loop, a panic, or a task dropped before it ever ran.
#[derive(Clone)]
pub struct JobControl {
    state: Arc<JobState>,
    _alive: Arc<Alive>,
}

/// Marks the job finished when the last [`JobControl`] goes.
struct Alive(Arc<JobState>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.finished.store(true, Ordering::SeqCst);
        self.0.done.notify(usize::MAX);
    }
}

impl fmt::Debug for JobHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobHandle")
            .field("stopped", &self.state.stopped.load(Ordering::Relaxed))
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl fmt::Debug for JobControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobControl").finish_non_exhaustive()
    }
}

impl JobHandle {
    /// A new handle and the control its job runs with.
    pub fn new() -> (Self, JobControl) {
        let state = Arc::new(JobState::default());
        (
            Self {
                state: Arc::clone(&state),
            },
            JobControl {
                _alive: Arc::new(Alive(Arc::clone(&state))),
                state,
            },
        )
    }

    /// Records the thread running the job, so [`JobHandle::join`] joins it.
    pub fn set_thread(&self, thread: JoinHandle<()>) {
        *crate::lock(&self.state.thread) = Some(thread);
    }

    /// Asks the job to stop; a run in progress completes.
    pub fn stop(&self) {
        self.state.stopped.store(true, Ordering::SeqCst);
        self.state.stop.notify(usize::MAX);
    }

    /// Whether the job has stopped running.
    pub fn is_finished(&self) -> bool {
        self.state.finished.load(Ordering::SeqCst)
    }

    /// Stops the job and blocks until it has finished (and its thread, if
    /// it has one, has exited). Called from inside the job's own run (say,
    /// a loader that shuts everything down), it only stops the job: waiting
    /// for itself would never end.
    pub fn join(&self) {
        crate::block_on(self.join_async());
        if self.is_running_here() {
            return;
        }
        let thread = crate::lock(&self.state.thread).take();
        if let Some(thread) = thread {
            if thread.thread().id() != std::thread::current().id() && thread.join().is_err() {
                tracing::error!(target: "advanced_caching::scheduler", "periodic job thread panicked");
            }
        }
    }

    /// Stops the job and waits, without blocking a thread, until it has
    /// finished (from inside the job's own run, it only stops it).
    pub async fn join_async(&self) {
        self.stop();
        if self.is_running_here() {
            return;
        }
        loop {
            let listener = self.state.done.listen();
            if self.is_finished() {
                return;
            }
            listener.await;
        }
    }
}

impl JobHandle {
    /// Whether this job's task is what the current thread is running.
    fn is_running_here(&self) -> bool {
        RUNNING.with(|running| running.get() == job_id(&self.state))
    }
}

thread_local! {
    /// The job whose task this thread is running (0: none).
    static RUNNING: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn job_id(state: &Arc<JobState>) -> usize {
    Arc::as_ptr(state) as usize
}

/// Runs `f` with `id` marked as the job this thread is running.
fn running<R>(id: usize, f: impl FnOnce() -> R) -> R {
    let outer = RUNNING.with(|running| running.replace(id));
    let result = f();
    RUNNING.with(|running| running.set(outer));
    result
}

impl Drop for JobHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

impl JobControl {
    /// Whether the job was asked to stop.
    pub fn is_stopped(&self) -> bool {
        self.state.stopped.load(Ordering::SeqCst)
    }

    /// Waits for `wait` or for a stop, whichever comes first; returns `true`
    /// if stopped.
    pub async fn until_stopped<F: Future<Output = ()>>(&self, wait: F) -> bool {
        let mut wait = pin!(wait);
        loop {
            let mut stop = self.state.stop.listen();
            if self.is_stopped() {
                return true;
            }
            let stopped = poll_fn(|cx| {
                if wait.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(false);
                }
                std::pin::Pin::new(&mut stop).poll(cx).map(|()| true)
            })
            .await;
            if !stopped || self.is_stopped() {
                return stopped;
            }
        }
    }

    /// Blocks up to `timeout` or until stopped; returns `true` if stopped.
    /// For schedulers whose job owns a thread.
    pub fn sleep_blocking(&self, timeout: Duration) -> bool {
        let listener = self.state.stop.listen();
        if self.is_stopped() {
            return true;
        }
        listener.wait_timeout(timeout);
        self.is_stopped()
    }
}

/// Drives a periodic job until stopped: waits for each tick (through the
/// clock's alarm for a test clock, else through `sleep`, the runtime's
/// timer), then runs the task. Runs keep a fixed schedule; one that started
/// late is followed a full interval later, so missed ticks are skipped,
/// not replayed in a burst.
///
/// Every [`Scheduler`] runs its periodic jobs through this one function.
pub async fn run_every<S, F>(every: Every, control: JobControl, sleep: S)
where
    S: Fn(Duration) -> F,
    F: Future<Output = ()>,
{
    let mut next = every.start;
    loop {
        let now = every.clock.now();
        // A wall clock stepped back must not postpone the job beyond one
        // interval.
        if next - now > every.interval {
            next = now + every.interval;
        }
        let stopped = match every.clock.alarm(next) {
            Some(alarm) => control.until_stopped(alarm).await,
            None if next > now => match Duration::try_from_secs_f64(next - now) {
                Ok(delay) => control.until_stopped(sleep(delay)).await,
                // An infinite interval: nothing is ever due.
                Err(_) => control.until_stopped(std::future::pending()).await,
            },
            None => control.is_stopped(),
        };
        if stopped || control.is_stopped() {
            return;
        }
        let started = every.clock.now();
        let id = job_id(&control.state);
        match &every.task {
            Task::Async(run) => {
                let mut task = run();
                poll_fn(|cx| running(id, || task.as_mut().poll(cx))).await;
            }
            Task::Blocking(run) => running(id, || run()),
        }
        // Keep the fixed schedule; but a run that started late (its thread
        // or task was busy) is followed one full interval later, so starts
        // are never closer than an interval (Cloud Monitoring, for one,
        // refuses points closer than its minimum) and missed ticks are not
        // replayed.
        next = if started > next + every.interval / 100.0 {
            started + every.interval
        } else {
            next + every.interval
        };
    }
}
