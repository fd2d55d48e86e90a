//! Single flight: concurrent misses on one key run the function once.
//!
//! The first caller to miss becomes the leader and runs the function; the
//! others wait for its outcome: its value, or a clone of its error (a
//! failing backend is asked once per flight, not once per waiter). Nothing
//! of a failed flight is kept: the next caller after it starts a new one.
//! If the leader panics or its future is dropped, waiters elect a new
//! leader, so a key is never wedged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::lock;

use event_listener::Event;

enum State<T, E> {
    Running,
    Done(T),
    Failed(E),
    Abandoned,
}

struct Flight<T, E> {
    state: Mutex<State<T, E>>,
    finished: Event,
}

/// What a waiter learns when the leader's flight ends.
pub(crate) enum Outcome<T, E> {
    /// The leader's value.
    Value(T),
    /// The leader's function returned this error.
    Failed(E),
    /// The leader panicked or was cancelled: try to lead.
    Abandoned,
}

/// The in-flight loads of one cached function, by key.
pub(crate) struct SingleFlight<T, E> {
    flights: Mutex<FlightMap<T, E>>,
}

type FlightMap<T, E> = HashMap<String, Arc<Flight<T, E>>, foldhash::fast::RandomState>;

pub(crate) enum Join<'a, T, E> {
    Leader(Leader<'a, T, E>),
    Waiter(Waiter<T, E>),
}

impl<T, E> SingleFlight<T, E> {
    pub(crate) fn new() -> Self {
        Self {
            flights: Mutex::new(HashMap::default()),
        }
    }

    /// Leads the flight for `key`, or waits on the one under way.
    pub(crate) fn join(&self, key: &str) -> Join<'_, T, E> {
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
    pub(crate) fn try_lead(&self, key: &str) -> Option<Leader<'_, T, E>> {
        let mut flights = lock(&self.flights);
        if flights.contains_key(key) {
            return None;
        }
        Some(self.start(&mut flights, key))
    }

    fn start(&self, flights: &mut FlightMap<T, E>, key: &str) -> Leader<'_, T, E> {
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
pub(crate) struct Leader<'a, T, E> {
    owner: &'a SingleFlight<T, E>,
    key: String,
    flight: Arc<Flight<T, E>>,
    ended: bool,
}

impl<T, E> Leader<'_, T, E> {
    pub(crate) fn succeed(mut self, value: T) {
        self.end(State::Done(value));
    }

    /// Ends the flight with `error`, which every waiter receives (cloned).
    pub(crate) fn fail(mut self, error: E) {
        self.end(State::Failed(error));
    }

    fn end(&mut self, state: State<T, E>) {
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

impl<T, E> Drop for Leader<'_, T, E> {
    fn drop(&mut self) {
        if !self.ended {
            self.end(State::Abandoned);
        }
    }
}

/// A caller waiting for a leader.
pub(crate) struct Waiter<T, E>(Arc<Flight<T, E>>);

impl<T: Clone, E: Clone> Waiter<T, E> {
    /// Waits for the leader to finish. In a sync call this parks the thread
    /// (the future is driven by a blocking executor); in an async call it
    /// yields to the runtime.
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
