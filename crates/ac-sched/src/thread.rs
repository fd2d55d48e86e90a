//! [`ThreadScheduler`]: background work on std threads, no async runtime.

use std::collections::VecDeque;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::Duration;

use ac_core::scheduler::{Every, JobHandle, run_every};
use ac_core::{BlockingJob, BoxFuture, Error, Scheduler};

/// The name of the thread each periodic job of a [`ThreadScheduler`] runs
/// on (short enough for Linux's 15-byte thread names).
pub const PERIODIC_THREAD_NAME: &str = "ac-every";

/// How long an idle worker waits for work before its thread exits.
const IDLE_EXIT: Duration = Duration::from_secs(30);

struct State {
    jobs: VecDeque<BlockingJob>,
    /// Workers waiting for a job.
    idle: usize,
    /// Live workers; a worker removes itself before it exits.
    workers: Vec<(ThreadId, JoinHandle<()>)>,
    /// Shutdowns in progress: workers exit once the queue is empty.
    draining: usize,
}

struct Pool {
    name: String,
    max_threads: usize,
    state: Mutex<State>,
    work: Condvar,
}

fn lock(pool: &Pool) -> MutexGuard<'_, State> {
    // Jobs run outside the lock, so a poisoned lock means a panic in this
    // module's own bookkeeping; the state is still consistent.
    pool.state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A small pool of std threads for blocking jobs: the refreshes of sync
/// cached functions, so they run off the caller's thread in a program with
/// no async runtime. Async tasks given to [`Scheduler::spawn`] are driven to
/// completion on a pool thread.
///
/// Threads start on demand, up to `max_threads`, and exit after 30 s idle.
/// A panicking job is caught and logged; the worker carries on.
#[derive(Clone)]
pub struct ThreadScheduler {
    pool: Arc<Pool>,
}

impl fmt::Debug for ThreadScheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.pool);
        f.debug_struct("ThreadScheduler")
            .field("name", &self.pool.name)
            .field("max_threads", &self.pool.max_threads)
            .field("threads", &state.workers.len())
            .field("queued", &state.jobs.len())
            .finish()
    }
}

impl ThreadScheduler {
    /// A pool named `name` (the threads' name) of at most `max_threads`.
    ///
    /// # Errors
    /// If `max_threads` is zero.
    pub fn new(name: impl Into<String>, max_threads: usize) -> Result<Self, Error> {
        if max_threads == 0 {
            return Err(Error::invalid_config(
                "ThreadScheduler needs at least one thread",
            ));
        }
        Ok(Self {
            pool: Arc::new(Pool {
                name: name.into(),
                max_threads,
                state: Mutex::new(State {
                    jobs: VecDeque::new(),
                    idle: 0,
                    workers: Vec::new(),
                    draining: 0,
                }),
                work: Condvar::new(),
            }),
        })
    }

    /// The process-wide pool (4 threads) that cached sync functions use by
    /// default.
    pub fn global() -> &'static Self {
        static GLOBAL: OnceLock<ThreadScheduler> = OnceLock::new();
        GLOBAL.get_or_init(|| Self::new("ac-refresh", 4).expect("4 threads is a valid pool size"))
    }

    /// Number of live worker threads.
    pub fn threads(&self) -> usize {
        lock(&self.pool).workers.len()
    }

    /// Runs every queued job, then stops and joins all worker threads. The
    /// pool stays usable: later jobs start new threads. Called from one of
    /// the pool's own jobs, it does not wait for that job's thread.
    pub fn shutdown(&self) {
        let workers = {
            let mut state = lock(&self.pool);
            state.draining += 1;
            std::mem::take(&mut state.workers)
        };
        self.pool.work.notify_all();
        let me = thread::current().id();
        for (id, handle) in workers {
            if id != me && handle.join().is_err() {
                tracing::error!(target: "advanced_caching::scheduler", pool = %self.pool.name, "worker thread panicked");
            }
        }
        lock(&self.pool).draining -= 1;
    }

    fn submit(&self, job: BlockingJob) -> Result<(), Error> {
        let mut state = lock(&self.pool);
        state.jobs.push_back(job);
        // Start a thread when the queue outgrows the idle workers, so a burst
        // of jobs runs in parallel rather than behind one slow job.
        if state.jobs.len() > state.idle && state.workers.len() < self.pool.max_threads {
            let pool = Arc::clone(&self.pool);
            let spawned = thread::Builder::new()
                .name(self.pool.name.clone())
                .spawn(move || work(&pool));
            match spawned {
                Ok(handle) => {
                    let id = handle.thread().id();
                    state.workers.push((id, handle));
                }
                Err(error) if state.workers.is_empty() => {
                    state.jobs.pop_back();
                    return Err(Error::scheduler_caused_by(
                        format!("cannot start a {} thread", self.pool.name),
                        error,
                    ));
                }
                // Busy threads will get to it.
                Err(_) => {}
            }
        }
        drop(state);
        self.pool.work.notify_one();
        Ok(())
    }
}

fn work(pool: &Pool) {
    let me = thread::current().id();
    let mut state = lock(pool);
    loop {
        if let Some(job) = state.jobs.pop_front() {
            drop(state);
            if catch_unwind(AssertUnwindSafe(job)).is_err() {
                tracing::error!(target: "advanced_caching::scheduler", pool = %pool.name, "background job panicked");
            }
            state = lock(pool);
            continue;
        }
        if state.draining > 0 {
            break;
        }
        state.idle += 1;
        let (next, timeout) = pool
            .work
            .wait_timeout(state, IDLE_EXIT)
            .unwrap_or_else(PoisonError::into_inner);
        state = next;
        state.idle -= 1;
        if timeout.timed_out() && state.jobs.is_empty() {
            break;
        }
    }
    // Leave the live set under the lock, so submit never counts a worker
    // that will not take its job.
    state.workers.retain(|(id, _)| *id != me);
}

impl Scheduler for ThreadScheduler {
    fn spawn(&self, task: BoxFuture<'static, ()>) -> Result<(), Error> {
        self.submit(Box::new(move || ac_core::block_on(task)))
    }

    fn spawn_blocking(&self, job: BlockingJob) -> Result<(), Error> {
        self.submit(job)
    }

    /// Runs the job on a thread of its own, named [`PERIODIC_THREAD_NAME`],
    /// which exits when the job is stopped; [`JobHandle::join`] joins it.
    fn every(&self, every: Every) -> Result<JobHandle, Error> {
        let (handle, control) = JobHandle::new();
        let thread = thread::Builder::new()
            .name(PERIODIC_THREAD_NAME.to_owned())
            .spawn(move || {
                let sleeper = control.clone();
                let sleep = move |delay| {
                    let sleeper = sleeper.clone();
                    async move {
                        sleeper.sleep_blocking(delay);
                    }
                };
                ac_core::block_on(run_every(every, control, sleep));
            })
            .map_err(|e| Error::scheduler_caused_by("cannot start a periodic job thread", e))?;
        handle.set_thread(thread);
        Ok(handle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn jobs_run_off_the_callers_thread() {
        let pool = ThreadScheduler::new("test-pool", 2).unwrap();
        let (tx, rx) = mpsc::channel();
        pool.spawn_blocking(Box::new(move || tx.send(thread::current().id()).unwrap()))
            .unwrap();
        let ran_on = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_ne!(ran_on, thread::current().id());
    }

    #[test]
    fn async_tasks_run_without_a_runtime() {
        let pool = ThreadScheduler::new("test-pool", 1).unwrap();
        let (tx, rx) = mpsc::channel();
        pool.spawn(Box::pin(async move { tx.send(7).unwrap() }))
            .unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), 7);
    }

    #[test]
    fn a_panicking_job_does_not_kill_the_pool() {
        let pool = ThreadScheduler::new("test-pool", 1).unwrap();
        pool.spawn_blocking(Box::new(|| panic!("job failure")))
            .unwrap();
        let (tx, rx) = mpsc::channel();
        pool.spawn_blocking(Box::new(move || tx.send(()).unwrap()))
            .unwrap();
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
    }

    #[test]
    fn shutdown_runs_queued_jobs_joins_threads_and_reopens() {
        let pool = ThreadScheduler::new("test-pool", 2).unwrap();
        let (tx, rx) = mpsc::channel();
        for i in 0..10 {
            let tx = tx.clone();
            pool.spawn_blocking(Box::new(move || tx.send(i).unwrap()))
                .unwrap();
        }
        pool.shutdown();
        assert_eq!(pool.threads(), 0);
        let mut done: Vec<i32> = rx.try_iter().collect();
        done.sort_unstable();
        assert_eq!(done, (0..10).collect::<Vec<_>>());
        pool.spawn_blocking(Box::new(move || tx.send(99).unwrap()))
            .unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), 99);
    }

    #[test]
    fn a_burst_of_jobs_runs_in_parallel_behind_a_slow_one() {
        let pool = ThreadScheduler::new("test-pool", 3).unwrap();
        let (release, wait) = mpsc::channel::<()>();
        let wait = Mutex::new(wait);
        // The first job blocks until the others have all run.
        pool.spawn_blocking(Box::new(move || wait.lock().unwrap().recv().unwrap()))
            .unwrap();
        let (tx, rx) = mpsc::channel();
        for i in 0..5 {
            let tx = tx.clone();
            pool.spawn_blocking(Box::new(move || tx.send(i).unwrap()))
                .unwrap();
        }
        let mut done: Vec<i32> = (0..5)
            .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap())
            .collect();
        done.sort_unstable();
        assert_eq!(done, vec![0, 1, 2, 3, 4]);
        release.send(()).unwrap();
        pool.shutdown();
    }

    #[test]
    fn dropping_a_job_handle_ends_the_job_and_its_thread() {
        use ac_core::scheduler::Task;
        use std::sync::Arc;

        /// Reports when the job's task is dropped, i.e. the job has ended.
        struct Ended(mpsc::Sender<()>);
        impl Drop for Ended {
            fn drop(&mut self) {
                let _ = self.0.send(());
            }
        }

        let clock = crate::ManualClock::new(0.0);
        let (ticked, ticks) = mpsc::channel();
        let (ended, end) = mpsc::channel();
        let guard = Ended(ended);
        let ticked = Mutex::new(ticked);
        let task = Task::Blocking(Arc::new(move || {
            let _keep = &guard;
            ticked.lock().unwrap().send(()).unwrap();
        }));
        let pool = ThreadScheduler::new("drop-test", 1).unwrap();
        let handle = pool
            .every(Every {
                interval: 10.0,
                start: 0.0,
                clock: Arc::new(clock.clone()),
                task,
            })
            .unwrap();
        ticks.recv_timeout(Duration::from_secs(10)).unwrap();
        drop(handle);
        end.recv_timeout(Duration::from_secs(10))
            .expect("the job ended after its handle was dropped");
        clock.advance(100.0);
        assert!(ticks.try_recv().is_err(), "no tick after the drop");
    }

    fn ticking<C: ac_core::Clock + Clone>(
        clock: &C,
        interval: f64,
    ) -> (JobHandle, mpsc::Receiver<f64>) {
        use ac_core::scheduler::Task;
        use std::sync::Arc;
        let (tx, ticks) = mpsc::channel();
        let tx = Mutex::new(tx);
        let now = clock.clone();
        let task = Task::Blocking(Arc::new(move || {
            let _ = tx.lock().unwrap().send(now.now());
        }));
        let handle = ThreadScheduler::new("tick-test", 1)
            .unwrap()
            .every(Every {
                interval,
                start: clock.now(),
                clock: Arc::new(clock.clone()),
                task,
            })
            .unwrap();
        (handle, ticks)
    }

    /// Real time minus an offset the test can step, like NTP stepping the
    /// wall clock back; no alarm, so jobs sleep on the runtime's timer.
    #[derive(Debug, Clone, Default)]
    struct SteppedClock(std::sync::Arc<std::sync::atomic::AtomicU64>);

    impl ac_core::Clock for SteppedClock {
        fn now(&self) -> f64 {
            let offset = self.0.load(std::sync::atomic::Ordering::SeqCst);
            ac_core::clock::unix_now() - f64::from_bits(offset)
        }
    }

    #[test]
    fn a_wall_clock_stepped_back_delays_a_job_by_one_interval_at_most() {
        let clock = SteppedClock::default();
        let (_handle, ticks) = ticking(&clock, 0.2);
        ticks.recv_timeout(Duration::from_secs(10)).unwrap();
        clock
            .0
            .store(1000f64.to_bits(), std::sync::atomic::Ordering::SeqCst);
        ticks
            .recv_timeout(Duration::from_secs(10))
            .expect("ran about an interval after the step, not 1000 s later");
    }

    #[test]
    fn an_infinite_interval_runs_once_and_waits_without_panicking() {
        let clock = crate::ManualClock::new(0.0);
        let (handle, ticks) = ticking(&clock, f64::INFINITY);
        ticks.recv_timeout(Duration::from_secs(10)).unwrap();
        clock.advance(1e12);
        assert!(ticks.recv_timeout(Duration::from_millis(200)).is_err());
        handle.join();
        assert!(handle.is_finished());
    }

    #[test]
    fn zero_threads_is_refused() {
        let err = ThreadScheduler::new("x", 0).unwrap_err();
        assert!(err.to_string().contains("at least one thread"));
    }
}
