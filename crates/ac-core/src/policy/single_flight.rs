//! Single flight: concurrent misses on one key run the function once.
//!
//! The first caller to miss becomes the leader and runs the function; the
//! others wait for its value. If the leader fails, waiters run the function
//! themselves (an error `E` need not be `Clone`); if the leader panics or its
//! future is dropped, waiters elect a new leader, so a key is never wedged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::lock;

use event_listener::Event;

enum State<T> {
    Running,
    Done(T),
    Failed,
    Abandoned,
}

struct Flight<T> {
    state: Mutex<State<T>>,
    finished: Event,
}

/// What a waiter learns when the leader's flight ends.
pub(crate) enum Outcome<T> {
    /// The leader's value.
    Value(T),
    /// The leader's function returned an error.
    Failed,
    /// The leader panicked or was cancelled: try to lead.
    Abandoned,
}

/// The in-flight loads of one cached function, by key.
pub(crate) struct SingleFlight<T> {
    flights: Mutex<HashMap<String, Arc<Flight<T>>, foldhash::fast::RandomState>>,
}

pub(crate) enum Join<'a, T> {
    Leader(Leader<'a, T>),
    Waiter(Waiter<T>),
}

impl<T: Clone> SingleFlight<T> {
    pub(crate) fn new() -> Self {
        Self {
            flights: Mutex::new(HashMap::default()),
        }
    }

    /// Leads the flight for `key`, or waits on the one under way.
    pub(crate) fn join(&self, key: &str) -> Join<'_, T> {
        let mut flights = lock(&self.flights);
        if let Some(flight) = flights.get(key) {
            return Join::Waiter(Waiter(flight.clone()));
        }
        Join::Leader(self.start(&mut flights, key))
    }

    /// Forgets the flight for `key`, if any: callers from now on start a new
    /// one instead of joining a load that began before an invalidation.
    pub(crate) fn detach(&self, key: &str) {
        lock(&self.flights).remove(key);
    }

    /// Forgets every flight (see [`SingleFlight::detach`]).
    pub(crate) fn detach_all(&self) {
        lock(&self.flights).clear();
    }

    /// Leads the flight for `key` unless one is under way.
    pub(crate) fn try_lead(&self, key: &str) -> Option<Leader<'_, T>> {
        let mut flights = lock(&self.flights);
        if flights.contains_key(key) {
            return None;
        }
        Some(self.start(&mut flights, key))
    }

    fn start(
        &self,
        flights: &mut HashMap<String, Arc<Flight<T>>, foldhash::fast::RandomState>,
        key: &str,
    ) -> Leader<'_, T> {
        let flight = Arc::new(Flight {
            state: Mutex::new(State::Running),
            finished: Event::new(),
        });
        flights.insert(key.to_owned(), flight.clone());
        Leader {
            owner: self,
            key: key.to_owned(),
            flight,
            ended: false,
        }
    }
}

/// The caller that runs the function for a key. Dropping it without
/// [`Leader::succeed`] or [`Leader::fail`] (a panic, a cancelled future)
/// lets the waiters elect a new leader.
pub(crate) struct Leader<'a, T> {
    owner: &'a SingleFlight<T>,
    key: String,
    flight: Arc<Flight<T>>,
    ended: bool,
}

impl<T> Leader<'_, T> {
    pub(crate) fn succeed(mut self, value: T) {
        self.end(State::Done(value));
    }

    pub(crate) fn fail(mut self) {
        self.end(State::Failed);
    }

    fn end(&mut self, state: State<T>) {
        self.ended = true;
        // Leave the map first: a caller arriving now starts a new flight
        // (and finds the stored value) instead of joining a finished one.
        {
            let mut flights = lock(&self.owner.flights);
            if flights
                .get(&self.key)
                .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
            {
                flights.remove(&self.key);
            }
        }
        *lock(&self.flight.state) = state;
        self.flight.finished.notify(usize::MAX);
    }
}

impl<T> Drop for Leader<'_, T> {
    fn drop(&mut self) {
        if !self.ended {
            self.end(State::Abandoned);
        }
    }
}

/// A caller waiting for a leader.
pub(crate) struct Waiter<T>(Arc<Flight<T>>);

impl<T: Clone> Waiter<T> {
    /// Waits for the leader to finish. In a sync call this parks the thread
    /// (the future is driven by a blocking executor); in an async call it
    /// yields to the runtime.
    pub(crate) async fn wait(self) -> Outcome<T> {
        loop {
            let listener = self.0.finished.listen();
            match &*lock(&self.0.state) {
                State::Running => {}
                State::Done(value) => return Outcome::Value(value.clone()),
                State::Failed => return Outcome::Failed,
                State::Abandoned => return Outcome::Abandoned,
            }
            listener.await;
        }
    }
}
