//! [`ChainCacheBuilder`] and [`ChainCache::hybrid`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use super::{ChainCache, Level};
use crate::clock::{check_seconds, ttl_duration};
use crate::{Clock, ClockReader, CoarseClock, Error, IntoDynStore, IntoSeconds, Store};

/// Builds a [`ChainCache`]: levels fastest first, each keeping entries for
/// the caller's TTL ([`level`](Self::level)) or at most its own
/// ([`level_with_ttl`](Self::level_with_ttl), in seconds or a
/// [`Duration`](std::time::Duration)).
///
/// ```
/// use ac_core::{ChainCache, ManualClock};
/// # fn demo(l1: impl ac_core::Store, l2: impl ac_core::Store) -> Result<(), ac_core::Error> {
/// let clock = ManualClock::new(1_000.0);
/// let chain = ChainCache::builder()
///     .level_with_ttl(l1, 30)
///     .level_with_ttl(l2, std::time::Duration::from_secs(3600))
///     .clock(clock)
///     .build()?;
/// assert_eq!(chain.levels().count(), 2);
/// # Ok(()) }
/// ```
#[must_use]
#[derive(Default)]
pub struct ChainCacheBuilder {
    /// Each level's store and TTL in seconds (`None`: the caller's),
    /// checked by `build`.
    levels: Vec<(Arc<dyn Store>, Option<f64>)>,
    clock: Option<Arc<dyn Clock>>,
}

impl fmt::Debug for ChainCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainCacheBuilder")
            .field("levels", &self.levels)
            .field("clock", &self.clock)
            .finish()
    }
}

impl ChainCacheBuilder {
    /// Adds the next (slower) level, keeping entries for the caller's TTL.
    pub fn level(mut self, store: impl IntoDynStore) -> Self {
        self.levels.push((store.into_dyn_store(), None));
        self
    }

    /// Adds the next (slower) level, keeping entries at most `ttl` seconds
    /// (an integer, a float or a [`Duration`](std::time::Duration);
    /// infinity: the caller's TTL),
    /// or the caller's TTL if shorter.
    pub fn level_with_ttl(mut self, store: impl IntoDynStore, ttl: impl IntoSeconds) -> Self {
        self.levels
            .push((store.into_dyn_store(), Some(ttl.into_seconds())));
        self
    }

    /// The clock that decides freshness when choosing between levels and
    /// how long backfills last (default: [`CoarseClock`], as cached
    /// functions). Give it the clock the cached functions use.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// The chain.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for no level, or a level TTL that is zero,
    /// negative or NaN.
    pub fn build(self) -> Result<ChainCache, Error> {
        if self.levels.is_empty() {
            return Err(Error::invalid_config(
                "ChainCache needs at least one level; add them with .level(..)",
            ));
        }
        let levels = self
            .levels
            .into_iter()
            .enumerate()
            .map(|(index, (store, ttl))| {
                let Some(secs) = ttl else {
                    return Ok((store, None));
                };
                let what = format!("ChainCache: the TTL of level {}", index + 1);
                if check_seconds(&what, secs)? == 0.0 {
                    return Err(Error::invalid_config(format!(
                        "{what} is zero; use .level(..) for the caller's TTL"
                    )));
                }
                Ok((store, ttl_duration(secs)))
            })
            .collect::<Result<Vec<Level>, Error>>()?;
        Ok(ChainCache {
            levels: levels.into(),
            clock: ClockReader::new(
                self.clock
                    .unwrap_or_else(|| Arc::new(CoarseClock::new()) as Arc<dyn Clock>),
            ),
            invalidations: Arc::new(AtomicU64::new(0)),
        })
    }
}

impl ChainCache {
    /// The two-level cache of the seed (the Python package's `HybridCache`):
    /// an in-process `l1` keeping entries at most `l1_ttl` seconds, in front
    /// of a shared `l2` (Redis, say) keeping them at most `2 × l1_ttl`, both
    /// bounded by the caller's TTL. For another L2 TTL or a clock, use
    /// [`ChainCache::builder`].
    ///
    /// ```
    /// # fn demo(l1: impl ac_core::Store, l2: impl ac_core::Store) -> Result<(), ac_core::Error> {
    /// let hybrid = ac_core::ChainCache::hybrid(l1, l2, 60)?;
    /// let ttls: Vec<_> = hybrid.levels().map(|(_, ttl)| ttl).collect();
    /// assert_eq!(
    ///     ttls,
    ///     [Some(std::time::Duration::from_secs(60)), Some(std::time::Duration::from_secs(120))]
    /// );
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an `l1_ttl` that is zero, negative or
    /// NaN.
    pub fn hybrid(
        l1: impl IntoDynStore,
        l2: impl IntoDynStore,
        l1_ttl: impl IntoSeconds,
    ) -> Result<Self, Error> {
        let l1_ttl = l1_ttl.into_seconds();
        Self::builder()
            .level_with_ttl(l1, l1_ttl)
            .level_with_ttl(l2, l1_ttl * 2.0)
            .build()
    }
}
