//! `bg::shutdown()` joins every job and thread `bg` started. Alone in its
//! binary because shutdown is process-wide.

mod support;

use std::sync::Mutex;
use std::time::Duration;

use advanced_caching::{
    BoxFuture, Decoder, Entry, Error, InMemCache, ManualClock, Store, Value, bg,
};
use support::{RefreshWatch, T0};

/// A store that answers its first read with a value, then fails every
/// operation, as a server that went away does.
#[derive(Debug)]
struct AnswersOnce(Mutex<Option<Entry>>);

fn gone<T: Send + 'static>() -> BoxFuture<'static, Result<T, Error>> {
    Box::pin(async { Err(Error::store("answers-once", "connection refused")) })
}

impl Store for AnswersOnce {
    fn name(&self) -> &'static str {
        "answers-once"
    }
    fn get<'a>(
        &'a self,
        _: &'a str,
        _: &'a dyn Decoder,
    ) -> BoxFuture<'a, Result<Option<Entry>, Error>> {
        match self.0.lock().unwrap().take() {
            Some(entry) => Box::pin(async move { Ok(Some(entry)) }),
            None => gone(),
        }
    }
    fn set<'a>(
        &'a self,
        _: &'a str,
        _: Entry,
        _: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        gone()
    }
    fn set_if_absent<'a>(
        &'a self,
        _: &'a str,
        _: Entry,
        _: Option<Duration>,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        gone()
    }
    fn delete<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        gone()
    }
    fn clear(&self) -> BoxFuture<'_, Result<(), Error>> {
        gone()
    }
}

/// Threads of this process that run periodic jobs.
fn periodic_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("Linux /proc")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end() == advanced_caching::crates::sched::PERIODIC_THREAD_NAME)
        .count()
}

#[test]
fn shutdown_joins_every_job_and_thread_and_allows_new_registrations() {
    let clock = ManualClock::new(T0);
    let watch = RefreshWatch::default();
    let loaders: Vec<_> = (0..3)
        .map(|i| {
            bg(60)
                .key(format!("shutdown:{i}"))
                .clock(clock.clone())
                .metrics(watch.clone())
                .wrap(move || i)
                .unwrap()
        })
        .collect();
    let writer = bg::write(60)
        .key("shutdown:w")
        .store(InMemCache::new())
        .wrap(|| 1u8)
        .unwrap();
    assert_eq!(writer.get(), 1, "the writer's first load is in the store");
    let reader = bg::read::<u8>("shutdown:w").build().unwrap();
    watch.until_blocking(3);
    assert!(periodic_threads() >= 4, "loaders and writer run threads");

    // A reader holding its value through failed syncs, past its ttl.
    let syncs = RefreshWatch::default();
    let first = Entry::new(Value::new(7u8), f64::INFINITY, T0);
    let holding = bg::read::<u8>("shutdown:holding")
        .interval(10)
        .ttl(20)
        .store(AnswersOnce(Mutex::new(Some(first))))
        .clock(clock.clone())
        .metrics(syncs.clone())
        .on_error(|_| {})
        .build()
        .unwrap();
    clock.set(T0 + 10.0);
    syncs.until_blocking(2);
    clock.set(T0 + 20.0);
    syncs.until_blocking(3);
    clock.set(T0 + 25.0);
    assert_eq!(holding.get(), Some(7), "held past its ttl while syncs fail");

    bg::shutdown();
    assert_eq!(
        holding.get(),
        None,
        "with no sync to come, the ttl rule applies again"
    );
    assert_eq!(periodic_threads(), 0, "no periodic thread left running");
    assert_eq!(
        loaders[1].get(),
        1,
        "loaders still answer from their last value"
    );
    assert_eq!(reader.get(), Some(1));

    // Writers were forgotten: the key can be registered again.
    let again = bg::write(60).key("shutdown:w").wrap(|| 2u8).unwrap();
    assert_eq!(again.get(), 2);
    drop(writer);
}
