//! A bg loader may call `bg::shutdown()` from its own refresh. Alone in its
//! binary because shutdown is process-wide.

mod support;

use advanced_caching::{ManualClock, bg};
use support::{RefreshWatch, T0};

#[test]
fn a_loader_may_shut_everything_down_from_its_own_refresh() {
    let clock = ManualClock::new(T0);
    let watch = RefreshWatch::default();
    let (tx, done) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let runs = std::sync::atomic::AtomicU32::new(0);
    let loader = bg(60)
        .key("shutdown:self")
        .clock(clock.clone())
        .metrics(watch.clone())
        .wrap(move || {
            if runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1 {
                bg::shutdown(); // joins every job, this one included
                tx.lock().unwrap().send(()).unwrap();
            }
            1u8
        })
        .unwrap();
    assert_eq!(loader.get(), 1);
    clock.advance(60.0);
    done.recv_timeout(std::time::Duration::from_secs(20))
        .expect("shutdown from inside a job returned instead of waiting for itself");
}
