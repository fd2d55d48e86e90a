//! Concurrent misses on one key run the function once — with real threads
//! and real tasks. The functions sleep only to hold the race window open.

mod support;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use advanced_caching::cache;
use support::Calls;

#[test]
fn concurrent_sync_misses_run_the_function_once() {
    let calls = Calls::default();
    let c = calls.clone();
    let f = cache(60)
        .key("slow:{}")
        .wrap(move |x: u64| {
            thread::sleep(Duration::from_millis(100));
            (x, c.bump())
        })
        .unwrap();
    let barrier = Arc::new(Barrier::new(16));
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let (f, barrier) = (f.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                f.call(7)
            })
        })
        .collect();
    for handle in handles {
        assert_eq!(
            handle.join().unwrap(),
            (7, 1),
            "everyone got the one result"
        );
    }
    assert_eq!(calls.get(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_async_misses_run_the_function_once() {
    let calls = Calls::default();
    let c = calls.clone();
    let f = cache(60)
        .key("slow:{}")
        .wrap_async(move |x: u64| {
            let c = c.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                (x, c.bump())
            }
        })
        .unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move { f.call(3).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), (3, 1));
    }
    assert_eq!(calls.get(), 1);
}

#[test]
fn a_panicking_leader_does_not_wedge_the_key() {
    let calls = Calls::default();
    let c = calls.clone();
    let f = cache(60)
        .key("p")
        .wrap(move |()| {
            let n = c.bump();
            thread::sleep(Duration::from_millis(50));
            assert!(n != 1, "first load panics");
            n
        })
        .unwrap();
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (f, barrier) = (f.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                catch_unwind(AssertUnwindSafe(|| f.call(()))).ok()
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        results.iter().filter(|r| r.is_none()).count(),
        1,
        "one panic"
    );
    assert!(results.iter().flatten().all(|&v| v == 2), "{results:?}");
    assert_eq!(calls.get(), 2, "one new leader after the panic");
    assert_eq!(f.call(()), 2, "and the key is cached");
}

/// Callers in one flight of a failing function: how many runs of the
/// function they caused, and what each got.
const FAILING_CALLERS: usize = 20;

#[test]
fn a_failing_load_runs_once_for_all_its_waiters_and_is_not_cached() {
    let calls = Calls::default();
    let c = calls.clone();
    let f = cache(60)
        .key("e")
        .try_wrap(move |()| {
            let n = c.bump();
            thread::sleep(Duration::from_millis(100)); // hold the flight open
            if n == 1 {
                Err(format!("backend down (run {n})"))
            } else {
                Ok(n)
            }
        })
        .unwrap();
    let barrier = Arc::new(Barrier::new(FAILING_CALLERS));
    let handles: Vec<_> = (0..FAILING_CALLERS)
        .map(|_| {
            let (f, barrier) = (f.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                f.call(())
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        calls.get(),
        1,
        "one run of the function for {FAILING_CALLERS} callers"
    );
    for result in &results {
        assert_eq!(
            result,
            &Err("backend down (run 1)".to_owned()),
            "every waiter got the flight's error"
        );
    }
    assert_eq!(
        f.call(()),
        Ok(2),
        "the error was not cached: the next call runs again"
    );
    assert_eq!(f.call(()), Ok(2), "and its success is");
    assert_eq!(calls.get(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_async_load_runs_once_for_all_its_waiters_and_is_not_cached() {
    let calls = Calls::default();
    let c = calls.clone();
    let f = cache(60)
        .key("e")
        .try_wrap_async(move |()| {
            let c = c.clone();
            async move {
                let n = c.bump();
                tokio::time::sleep(Duration::from_millis(100)).await;
                if n == 1 {
                    Err(Arc::new(std::io::Error::other("backend down")))
                } else {
                    Ok(n)
                }
            }
        })
        .unwrap();
    let tasks: Vec<_> = (0..FAILING_CALLERS)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move { f.call(()).await })
        })
        .collect();
    for task in tasks {
        let error = task.await.unwrap().unwrap_err();
        assert_eq!(
            error.to_string(),
            "backend down",
            "every waiter got the flight's error"
        );
    }
    assert_eq!(
        calls.get(),
        1,
        "one run of the function for {FAILING_CALLERS} tasks"
    );
    assert_eq!(f.call(()).await.unwrap(), 2, "the error was not cached");
    assert_eq!(calls.get(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_async_leader_hands_over_to_a_waiter() {
    let calls = Calls::default();
    let c = calls.clone();
    let f = cache(60)
        .key("c")
        .wrap_async(move |()| {
            let c = c.clone();
            async move {
                let n = c.bump();
                if n == 1 {
                    // The first leader is cancelled while parked here.
                    std::future::pending::<()>().await;
                }
                n
            }
        })
        .unwrap();
    let leader = tokio::spawn({
        let f = f.clone();
        async move { f.call(()).await }
    });
    while calls.get() == 0 {
        tokio::task::yield_now().await;
    }
    let waiter = tokio::spawn({
        let f = f.clone();
        async move { f.call(()).await }
    });
    tokio::task::yield_now().await;
    leader.abort();
    let got = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("waiter not wedged")
        .unwrap();
    assert_eq!(got, 2);
    assert_eq!(f.call(()).await, 2);
}

#[test]
fn a_call_after_invalidate_does_not_get_the_value_of_a_load_begun_before() {
    let (started_tx, started) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = std::sync::Mutex::new(release_rx);
    let calls = Calls::default();
    let c = calls.clone();
    let f = cache(60)
        .key("inv")
        .wrap(move |()| {
            let n = c.bump();
            if n == 1 {
                started_tx.send(()).unwrap();
                release_rx.lock().unwrap().recv().unwrap();
            }
            n
        })
        .unwrap();
    let old = thread::spawn({
        let f = f.clone();
        move || f.call(())
    });
    started.recv().unwrap(); // the first load is running
    f.invalidate(()).unwrap();
    assert_eq!(
        f.call(()),
        2,
        "a new load, not the one begun before invalidate"
    );
    release.send(()).unwrap();
    assert_eq!(old.join().unwrap(), 1, "the old caller gets its own value");
    assert_eq!(
        f.call(()),
        2,
        "and the old value was not stored over the new one"
    );
}
