//! Single flight: concurrent misses on one key run the function once.
//!
//! The first caller to miss becomes the leader and runs the function; the
//! others wait for its outcome: its value, or a clone of its error (a
//! failing backend is asked once per flight, not once per waiter). Nothing
//! of a failed flight is kept: the next caller after it starts a new one.
//! If the leader panics or its future is dropped, waiters elect a new
//! leader, so a key is never wedged.
//!
//! A miss is mostly one store write; this module keeps its own share small:
//! a flight nobody waited on is kept for the next miss (with its key
//! buffer), and the owned keys of misses come from a small per-thread pool
//! of buffers, so a miss without waiters allocates nothing here.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use crate::lock;

use event_listener::Event;

enum State<T, E> {
    Running,
    Done(T),
    Failed(E),
    Abandoned,
}

/// One load under way, owning its key.
struct Flight<T, E> {
    key: String,
    state: Mutex<State<T, E>>,
    finished: Event,
}

/// A flight in the set, found by its key.
struct ByKey<T, E>(Arc<Flight<T, E>>);

impl<T, E> Borrow<str> for ByKey<T, E> {
    fn borrow(&self) -> &str {
        &self.0.key
    }
}

impl<T, E> Hash for ByKey<T, E> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.key.hash(state);
    }
}

impl<T, E> PartialEq for ByKey<T, E> {
    fn eq(&self, other: &Self) -> bool {
        self.0.key == other.0.key
    }
}

impl<T, E> Eq for ByKey<T, E> {}

/// What a waiter learns when the leader's flight ends.
pub(crate) enum Outcome<T, E> {
    /// The leader's value.
    Value(T),
    /// The leader's function returned this error.
    Failed(E),
    /// The leader panicked or was cancelled: try to lead.
    Abandoned,
}

/// Flights kept for reuse, at most.
const SPARE_FLIGHTS: usize = 8;
/// Key buffers kept per thread, at most, and the largest kept.
const SPARE_KEYS: usize = 8;
const SPARE_KEY_CAPACITY: usize = 256;

thread_local! {
    static KEY_BUFFERS: std::cell::RefCell<Vec<String>> = const {
        std::cell::RefCell::new(Vec::new())
    };
}

/// `key` as an owned string, in a reused buffer when this thread has one.
pub(crate) fn owned_key(key: &str) -> String {
    let reused = KEY_BUFFERS
        .try_with(|buffers| buffers.try_borrow_mut().ok()?.pop())
        .ok()
        .flatten();
    match reused {
        Some(mut buffer) => {
            buffer.clear();
            buffer.push_str(key);
            buffer
        }
        None => key.to_owned(),
    }
}

/// Keeps `buffer` for [`owned_key`] on this thread, if there is room.
fn recycle_key(buffer: String) {
    if buffer.capacity() > SPARE_KEY_CAPACITY {
        return;
    }
    let _ = KEY_BUFFERS.try_with(|buffers| {
        if let Ok(mut buffers) = buffers.try_borrow_mut()
            && buffers.len() < SPARE_KEYS
        {
            buffers.push(buffer);
        }
    });
}

/// The flights under way, and spare ones.
struct Flights<T, E> {
    running: HashSet<ByKey<T, E>, foldhash::fast::RandomState>,
    spare: Vec<Arc<Flight<T, E>>>,
}

/// The in-flight loads of one cached function, by key.
pub(crate) struct SingleFlight<T, E> {
    flights: Mutex<Flights<T, E>>,
}

pub(crate) enum Join<'a, T, E> {
    Leader(Leader<'a, T, E>),
    Waiter(Waiter<T, E>),
}

impl<T, E> SingleFlight<T, E> {
    pub(crate) fn new() -> Self {
        Self {
            flights: Mutex::new(Flights {
                running: HashSet::default(),
                spare: Vec::new(),
            }),
        }
    }

    /// Leads the flight for `key`, or waits on the one under way.
    pub(crate) fn join(&self, key: String) -> Join<'_, T, E> {
        let mut flights = lock(&self.flights);
        if let Some(flight) = flights.running.get(key.as_str()) {
            let waiter = Waiter(Arc::clone(&flight.0));
            drop(flights);
            recycle_key(key);
            return Join::Waiter(waiter);
        }
        Join::Leader(self.start(&mut flights, key))
    }

    /// Forgets the flight for `key`, if any: callers from now on start a new
    /// one instead of joining a load that began before an invalidation.
    pub(crate) fn detach(&self, key: &str) {
        lock(&self.flights).running.remove(key);
    }

    /// Forgets every flight (see [`SingleFlight::detach`]).
    pub(crate) fn detach_all(&self) {
        lock(&self.flights).running.clear();
    }

    /// Leads the flight for `key` unless one is under way.
    pub(crate) fn try_lead(&self, key: String) -> Option<Leader<'_, T, E>> {
        let mut flights = lock(&self.flights);
        if flights.running.contains(key.as_str()) {
            return None;
        }
        Some(self.start(&mut flights, key))
    }

    fn start(&self, flights: &mut Flights<T, E>, key: String) -> Leader<'_, T, E> {
        let new = |key| {
            Arc::new(Flight {
                key,
                state: Mutex::new(State::Running),
                finished: Event::new(),
            })
        };
        let flight = match flights.spare.pop() {
            Some(mut flight) => {
                if let Some(reused) = Arc::get_mut(&mut flight) {
                    recycle_key(std::mem::replace(&mut reused.key, key));
                    *reused
                        .state
                        .get_mut()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = State::Running;
                    flight
                } else {
                    new(key)
                }
            }
            None => new(key),
        };
        flights.running.insert(ByKey(Arc::clone(&flight)));
        Leader {
            owner: self,
            flight,
            ended: false,
        }
    }
}

/// The caller that runs the function. It must end the flight: dropping it
/// unended (a panic, a cancelled future) abandons it, and waiters elect a
/// new leader.
pub(crate) struct Leader<'a, T, E> {
    owner: &'a SingleFlight<T, E>,
    flight: Arc<Flight<T, E>>,
    ended: bool,
}

impl<T, E> Leader<'_, T, E> {
    /// The key this flight loads.
    pub(crate) fn key(&self) -> &str {
        &self.flight.key
    }

    pub(crate) fn succeed(mut self, value: T) {
        self.end(State::Done(value));
    }

    pub(crate) fn fail(mut self, error: E) {
        self.end(State::Failed(error));
    }

    fn end(&mut self, state: State<T, E>) {
        self.ended = true;
        let mut flights = lock(&self.owner.flights);
        // Only our own flight: after a detach, the key may be another's.
        if let Some(running) = flights.running.take(self.flight.key.as_str())
            && !Arc::ptr_eq(&running.0, &self.flight)
        {
            flights.running.insert(running);
        }
        // Nobody waits (no other reference, and none can be taken now that
        // it is out of the set): keep it for the next miss.
        if Arc::strong_count(&self.flight) == 1 && flights.spare.len() < SPARE_FLIGHTS {
            flights.spare.push(Arc::clone(&self.flight));
            return;
        }
        drop(flights);
        *lock(&self.flight.state) = state;
        self.flight.finished.notify(usize::MAX);
    }
}

impl<T, E> Drop for Leader<'_, T, E> {
    fn drop(&mut self) {
        if !self.ended {
            self.end(State::Abandoned);
        }
    }
}

/// A caller waiting on another's flight.
pub(crate) struct Waiter<T, E>(Arc<Flight<T, E>>);

impl<T: Clone, E: Clone> Waiter<T, E> {
    /// The key of the flight waited on.
    pub(crate) fn key(&self) -> &str {
        &self.0.key
    }

    /// The flight's outcome, once it ends.
    pub(crate) async fn wait(self) -> Outcome<T, E> {
        loop {
            let listener = self.0.finished.listen();
            match &*lock(&self.0.state) {
                State::Running => {}
                State::Done(value) => return Outcome::Value(value.clone()),
                State::Failed(error) => return Outcome::Failed(error.clone()),
                State::Abandoned => return Outcome::Abandoned,
            }
            listener.await;
        }
    }
}
