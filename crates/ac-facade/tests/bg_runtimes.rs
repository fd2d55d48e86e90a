//! The `bg` suite, run on every scheduler: std threads (sync functions),
//! tokio, async-std and smol (async functions), each when its feature is on
//! (the thread scheduler always). Time is a manual clock; the
//! tests wait for refreshes through a metrics collector that signals each
//! one, never by sleeping.

mod support;

use std::sync::Mutex;

use advanced_caching::{ManualClock, bg};
use support::{Calls, RefreshWatch, T0};

/// What a runtime gives the suite: a way to block on a future and a
/// scheduler for async loaders.
macro_rules! bg_suite {
    ($name:ident, $block_on:expr, $scheduler:expr) => {
        mod $name {
            use super::*;

            fn run<F: std::future::Future<Output = ()>>(test: F) {
                ($block_on)(test)
            }

            /// A manual clock, a call counter, a refresh watch, and a
            /// `bg(60)` builder wired to them and to this runtime.
            struct Fixture {
                clock: ManualClock,
                calls: Calls,
                watch: RefreshWatch,
            }

            impl Fixture {
                fn new() -> Self {
                    Self {
                        clock: ManualClock::new(T0),
                        calls: Calls::default(),
                        watch: RefreshWatch::default(),
                    }
                }

                fn loader(&self, test: &str) -> advanced_caching::BgBuilder {
                    bg(60)
                        .key(format!("{}:{test}", stringify!($name)))
                        .clock(self.clock.clone())
                        .scheduler($scheduler)
                        .metrics(self.watch.clone())
                }
            }

            fn counter(
                calls: &Calls,
            ) -> impl Fn() -> std::future::Ready<usize> + Send + Sync + 'static {
                let calls = calls.clone();
                move || std::future::ready(calls.bump())
            }

            #[test]
            fn immediate_first_load_is_awaited_by_the_first_call() {
                run(async {
                    let fx = Fixture::new();
                    let (calls, watch) = (&fx.calls, &fx.watch);
                    let flags = fx.loader("immediate").wrap_async(counter(calls)).unwrap();
                    assert_eq!(flags.get().await, 1);
                    assert_eq!(flags.get().await, 1);
                    assert_eq!(calls.get(), 1);
                    assert_eq!(watch.ok(), 1, "the first load ran in the background");
                });
            }

            #[test]
            fn deferred_first_load_runs_inline_then_on_schedule() {
                run(async {
                    let fx = Fixture::new();
                    let (clock, calls, watch) = (&fx.clock, &fx.calls, &fx.watch);
                    let flags = fx
                        .loader("deferred")
                        .run_immediately(false)
                        .wrap_async(counter(calls))
                        .unwrap();
                    assert_eq!(flags.get().await, 1, "first call loads inline");
                    assert_eq!(watch.ok(), 0, "nothing scheduled ran yet");
                    clock.advance(60.0);
                    watch.until(1).await;
                    assert_eq!(flags.get().await, 2);
                });
            }

            #[test]
            fn periodic_refresh_follows_the_clock() {
                run(async {
                    let fx = Fixture::new();
                    let (clock, calls, watch) = (&fx.clock, &fx.calls, &fx.watch);
                    let flags = fx.loader("periodic").wrap_async(counter(calls)).unwrap();
                    watch.until(1).await;
                    clock.advance(59.0);
                    assert_eq!(flags.get().await, 1, "not yet due");
                    clock.advance(1.0);
                    watch.until(2).await;
                    assert_eq!(flags.get().await, 2);
                    clock.advance(60.0);
                    watch.until(3).await;
                    assert_eq!(flags.get().await, 3);
                    assert_eq!(calls.get(), 3, "one call per tick, none from get()");
                });
            }

            #[test]
            fn a_failed_refresh_keeps_the_last_value_calls_on_error_and_keeps_going() {
                run(async {
                    let fx = Fixture::new();
                    let (clock, calls, watch) = (&fx.clock, &fx.calls, &fx.watch);
                    let (errors, reported) = std::sync::mpsc::channel::<String>();
                    let errors = Mutex::new(errors);
                    let c = calls.clone();
                    let rates = fx
                        .loader("rates")
                        .on_error(move |error| {
                            errors.lock().unwrap().send(error.to_string()).unwrap()
                        })
                        .try_wrap_async(move || {
                            let n = c.bump();
                            std::future::ready(if n == 2 { Err("forex API down") } else { Ok(n) })
                        })
                        .unwrap();
                    assert_eq!(rates.get().await, Ok(1));
                    clock.advance(60.0);
                    watch.until(2).await;
                    assert_eq!(rates.get().await, Ok(1), "last good value kept");
                    assert_eq!(watch.failed(), 1);
                    // on_error runs right after the failure is recorded.
                    let seen = reported
                        .recv_timeout(std::time::Duration::from_secs(20))
                        .unwrap();
                    assert!(
                        seen.contains("forex API down") && seen.contains(":rates"),
                        "{seen}"
                    );
                    clock.advance(60.0);
                    watch.until(3).await;
                    assert_eq!(rates.get().await, Ok(3), "the schedule kept running");
                });
            }

            #[test]
            fn a_panicking_loader_or_on_error_does_not_stop_the_schedule() {
                run(async {
                    let fx = Fixture::new();
                    let (clock, calls, watch) = (&fx.clock, &fx.calls, &fx.watch);
                    let c = calls.clone();
                    let flags = fx
                        .loader("panics")
                        .on_error(|_| panic!("on_error panics too"))
                        .wrap_async(move || {
                            let n = c.bump();
                            async move {
                                assert!(n != 2, "second load panics");
                                n
                            }
                        })
                        .unwrap();
                    assert_eq!(flags.get().await, 1);
                    clock.advance(60.0);
                    watch.until(2).await;
                    assert_eq!(watch.failed(), 1);
                    assert_eq!(flags.get().await, 1);
                    clock.advance(60.0);
                    watch.until(3).await;
                    assert_eq!(flags.get().await, 3);
                });
            }

            #[test]
            fn stopping_a_loader_stops_its_job() {
                run(async {
                    let fx = Fixture::new();
                    let (clock, calls, watch) = (&fx.clock, &fx.calls, &fx.watch);
                    let flags = fx.loader("stop").wrap_async(counter(calls)).unwrap();
                    watch.until(1).await;
                    flags.stop_and_wait().await;
                    clock.advance(600.0);
                    assert_eq!(calls.get(), 1, "no tick after stop");
                });
            }
        }
    };
}

#[cfg(feature = "tokio")]
bg_suite!(
    tokio_runtime,
    |test| tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(test),
    advanced_caching::TokioScheduler::new()
);
#[cfg(feature = "async-std")]
bg_suite!(
    async_std_runtime,
    async_std::task::block_on,
    advanced_caching::AsyncStdScheduler::new()
);
#[cfg(feature = "smol")]
bg_suite!(
    smol_runtime,
    smol::block_on,
    advanced_caching::SmolScheduler::new()
);
bg_suite!(
    thread_scheduler,
    advanced_caching::crates::core::block_on,
    advanced_caching::ThreadScheduler::new("bg-test", 2).unwrap()
);
