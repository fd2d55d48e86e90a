//! This process's `bg` jobs and `bg::write` writers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};

use ac_core::scheduler::JobHandle;
use ac_core::{Error, Store};

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Every periodic job started by `bg`, for [`shutdown`].
pub(super) fn jobs() -> &'static Mutex<Vec<Weak<JobHandle>>> {
    static JOBS: OnceLock<Mutex<Vec<Weak<JobHandle>>>> = OnceLock::new();
    JOBS.get_or_init(Mutex::default)
}

pub(super) fn register_job(job: JobHandle) -> Arc<JobHandle> {
    register_job_in(&mut lock(jobs()), job)
}

/// Registers `job` in the locked job list (see [`shutdown`] for why a
/// writer's build holds that lock across its registrations).
pub(super) fn register_job_in(jobs: &mut Vec<Weak<JobHandle>>, job: JobHandle) -> Arc<JobHandle> {
    let job = Arc::new(job);
    jobs.retain(|weak| weak.strong_count() > 0);
    jobs.push(Arc::downgrade(&job));
    job
}

pub(super) struct Writer {
    id: u64,
    pub(super) store: Arc<dyn Store>,
    pub(super) interval: f64,
    pub(super) ttl: f64,
}

/// The `bg::write` loaders of this process, by key.
pub(super) fn writers() -> &'static Mutex<HashMap<String, Writer>> {
    static WRITERS: OnceLock<Mutex<HashMap<String, Writer>>> = OnceLock::new();
    WRITERS.get_or_init(Mutex::default)
}

/// Removes a writer's registration when its loader is dropped.
pub(super) struct Registration {
    key: String,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut writers = lock(writers());
        if writers.get(&self.key).is_some_and(|w| w.id == self.id) {
            writers.remove(&self.key);
        }
    }
}

pub(super) fn register_writer(
    key: &str,
    store: Arc<dyn Store>,
    interval: f64,
    ttl: f64,
) -> Result<Registration, Error> {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let mut writers = lock(writers());
    if writers.contains_key(key) {
        return Err(Error::invalid_config(format!(
            "a bg::write writer for key {key:?} is already registered in this process \
             (one writer per key; drop the first to replace it)"
        )));
    }
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    writers.insert(
        key.to_owned(),
        Writer {
            id,
            store,
            interval,
            ttl,
        },
    );
    Ok(Registration {
        key: key.to_owned(),
        id,
    })
}

/// Stops every job `bg`, `bg::write` and `bg::read` started, waits for
/// running refreshes to finish and their threads to exit, and forgets the
/// writers. New loaders can be registered afterwards; existing ones keep
/// answering calls (from their last value, then inline). A reader serves
/// its last value until the ttl after its last good sync, also if it was
/// holding the value through failed syncs: with no more syncs to come,
/// nothing would end that hold.
///
/// Blocks the calling thread: from async code use [`shutdown_async`].
pub fn shutdown() {
    for job in take_jobs() {
        job.join();
    }
}

/// [`shutdown`] without blocking a thread.
pub async fn shutdown_async() {
    for job in take_jobs() {
        job.join_async().await;
    }
}

/// Takes every job and forgets every writer in one step under the job-list
/// lock: a writer being built concurrently either is in both (and is
/// stopped) or registers after (and lives on), never half of each.
fn take_jobs() -> Vec<Arc<JobHandle>> {
    let mut jobs = lock(jobs());
    lock(writers()).clear();
    std::mem::take(&mut *jobs)
        .into_iter()
        .filter_map(|weak| weak.upgrade())
        .collect()
}
