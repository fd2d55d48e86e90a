//! `bg::shutdown()` joins every job and thread `bg` started. Alone in its
//! binary because shutdown is process-wide.

mod support;

use advanced_caching::{InMemCache, ManualClock, bg};
use support::{RefreshWatch, Switch, T0};

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
    let store = Switch::on(&clock);
    store.put("shutdown:holding", 7u8, T0);
    let holding = bg::read::<u8>("shutdown:holding")
        .interval(10)
        .ttl(20)
        .store(store.clone())
        .clock(clock.clone())
        .metrics(syncs.clone())
        .on_error(|_| {})
        .build()
        .unwrap();
    syncs.until_blocking(1);
    store.set_down(true); // the server goes away after the first sync
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
