//! Whether a cached function is infallible or returns a `Result`.

use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;

/// How a cached function's result is returned: as is ([`Plain`]) or as a
/// `Result` whose errors are never cached ([`Fallible`]).
pub trait Outcome: Send + Sync + 'static {
    /// The function's error type: `Clone`, because every caller waiting
    /// on a failed run of the function receives its error.
    type Error: fmt::Debug + Clone + Send + 'static;
    /// What `call` returns for a value type `T`.
    type Output<T>;
    /// Turns the policy's result into `call`'s output.
    fn output<T>(result: Result<T, Self::Error>) -> Self::Output<T>;
}

/// A function that returns its value directly (`wrap`, `wrap_async`).
#[derive(Debug)]
pub enum Plain {}

impl Outcome for Plain {
    type Error = Infallible;
    type Output<T> = T;
    #[inline]
    fn output<T>(result: Result<T, Infallible>) -> T {
        match result {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }
}

/// A function that returns `Result<T, E>` (`try_wrap`, `try_wrap_async`):
/// only `Ok` values are cached; an `Err` goes to the caller.
pub struct Fallible<E>(PhantomData<fn() -> E>);

impl<E> fmt::Debug for Fallible<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fallible<{}>", std::any::type_name::<E>())
    }
}

impl<E: fmt::Debug + Clone + Send + 'static> Outcome for Fallible<E> {
    type Error = E;
    type Output<T> = Result<T, E>;
    #[inline]
    fn output<T>(result: Result<T, E>) -> Result<T, E> {
        result
    }
}
