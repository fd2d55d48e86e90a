//! [`ChainCache`]: N stores stacked fastest first, built with
//! [`ChainCache::builder`], or [`ChainCache::hybrid`] for the two-level
//! in-memory + shared-store case.

mod builder;

pub use builder::ChainCacheBuilder;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::{BoxFuture, ClockReader, Decoder, Entry, Error, Local, Store, Usage};

/// Stores stacked fastest first (L1 → L2 → … → Ln), itself a [`Store`].
///
/// - A read tries the levels in order and returns the first fresh entry;
///   a hit at L1 never touches L2. A hit at level *n* backfills the faster
///   levels, each for the smaller of its level TTL and the entry's
///   remaining freshness (a stale entry is not backfilled). If no level
///   holds a fresh entry, the first stale one found is returned, so
///   stale-while-revalidate keeps working.
/// - Writes go through every level, each for the smaller of its level TTL
///   and the caller's; `delete` and `clear` reach every level. Every level
///   is attempted even when one fails; the first error is returned.
/// - `set_if_absent` is decided by the slowest (shared) level, so of
///   several processes exactly one wins; the winner's value then goes to
///   the faster levels.
/// - The in-process fast path is L1's, for fresh entries: an L1 hit costs
///   an L1 hit plus one clock read. A stale or missing L1 entry sends the
///   caller to [`Store::get`], which looks at the slower levels (another
///   process may have refreshed the value there). The level TTL of L1
///   bounds how long a process serves a value without looking at the
///   shared level.
/// - A `delete` or `clear` during a read makes that read undo its
///   backfill, so an invalidated value does not come back from L1.
///
/// ```
/// # use ac_core::{ChainCache, Store};
/// # fn demo(l1: impl Store, l2: impl Store) -> Result<(), ac_core::Error> {
/// let chain = ChainCache::builder()
///     .level_with_ttl(l1, 60) // L1 keeps entries at most 60 s
///     .level(l2) // L2 keeps them for the caller's TTL
///     .build()?;
/// # let _ = chain; Ok(()) }
/// ```
#[derive(Clone)]
pub struct ChainCache {
    levels: Arc<[Level]>,
    clock: ClockReader,
    /// Bumped by `delete` and `clear`: a read that saw it change undoes
    /// its backfill.
    invalidations: Arc<AtomicU64>,
}

/// A level's store and its TTL.
type Level = (Arc<dyn Store>, Option<Duration>);

impl fmt::Debug for ChainCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for (store, ttl) in self.levels.iter() {
            list.entry(&(store, ttl));
        }
        list.finish()
    }
}

impl ChainCache {
    /// A builder: add levels fastest first, then [`build`](ChainCacheBuilder::build).
    pub fn builder() -> ChainCacheBuilder {
        ChainCacheBuilder::default()
    }

    /// The levels and their TTLs, fastest first.
    pub fn levels(&self) -> impl Iterator<Item = (&Arc<dyn Store>, Option<Duration>)> {
        self.levels.iter().map(|(store, ttl)| (store, *ttl))
    }

    /// The TTL of a level for a write whose caller asked `ttl`.
    fn level_ttl(level: Option<Duration>, ttl: Option<Duration>) -> Option<Duration> {
        match (level, ttl) {
            (Some(level), Some(ttl)) => Some(level.min(ttl)),
            (level, None) => level,
            (None, ttl) => ttl,
        }
    }

    /// Writes `entry` into levels `0..upto` for their TTLs bounded by
    /// `ttl`, attempting all; the first error.
    async fn write_levels(
        &self,
        key: &str,
        entry: &Entry,
        ttl: Option<Duration>,
        upto: usize,
    ) -> Result<(), Error> {
        on_each(&self.levels[..upto], |(store, level_ttl)| {
            store.set(key, entry.clone(), Self::level_ttl(*level_ttl, ttl))
        })
        .await
    }
}

/// Runs `op` on each of `levels` in turn, attempting all even after a
/// failure; the first error.
async fn on_each<'a>(
    levels: impl IntoIterator<Item = &'a Level>,
    op: impl Fn(&'a Level) -> BoxFuture<'a, Result<(), Error>>,
) -> Result<(), Error> {
    let mut first_error = None;
    for level in levels {
        if let Err(error) = op(level).await {
            first_error.get_or_insert(error);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// A chain holds byte stores (or may): its values must be serde.
impl crate::ByteStore for ChainCache {}

// Every method is forwarded: a defaulted one would bypass the levels'
// own (a Redis level's MGET, say).
#[deny(clippy::missing_trait_methods)]
impl Store for ChainCache {
    fn name(&self) -> &'static str {
        "chain"
    }

    fn get<'a>(
        &'a self,
        key: &'a str,
        decoder: &'a dyn Decoder,
    ) -> BoxFuture<'a, Result<Option<Entry>, Error>> {
        Box::pin(async move {
            let seen = self.invalidations.load(Ordering::Acquire);
            let now = self.clock.now();
            let mut stale = None;
            let mut first_error = None;
            for (index, (store, _)) in self.levels.iter().enumerate() {
                let entry = match store.get(key, decoder).await {
                    Ok(Some(entry)) => entry,
                    Ok(None) => continue,
                    // A failing level is skipped: a slower one may answer.
                    Err(error) => {
                        first_error.get_or_insert(error);
                        continue;
                    }
                };
                if !entry.is_fresh(now) {
                    stale.get_or_insert(entry);
                    continue;
                }
                if index > 0 {
                    let remaining = Duration::try_from_secs_f64(entry.fresh_until - now).ok();
                    // Backfill failures cost a later L2 read, nothing more.
                    let _ = self.write_levels(key, &entry, remaining, index).await;
                    if self.invalidations.load(Ordering::Acquire) != seen {
                        // Deleted or cleared meanwhile: take the copy back.
                        let _ =
                            on_each(&self.levels[..index], |(store, _)| store.delete(key)).await;
                    }
                }
                return Ok(Some(entry));
            }
            match (stale, first_error) {
                (Some(entry), _) => Ok(Some(entry)),
                (None, Some(error)) => Err(error),
                (None, None) => Ok(None),
            }
        })
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        entry: Entry,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move { self.write_levels(key, &entry, ttl, self.levels.len()).await })
    }

    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        entry: Entry,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let last = self.levels.len() - 1;
            let (deepest, level_ttl) = &self.levels[last];
            let won = deepest
                .set_if_absent(key, entry.clone(), Self::level_ttl(*level_ttl, ttl))
                .await?;
            if won {
                // The key is ours whatever happens to the faster copies;
                // a failed one only costs a read from the deepest level.
                // Per call, so not a warning (the key only at debug level).
                if let Err(error) = self.write_levels(key, &entry, ttl, last).await {
                    tracing::debug!(target: "advanced_caching::chain", %error, key, "ChainCache: set_if_absent won, copy to a faster level failed");
                }
            }
            Ok(won)
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            self.invalidations.fetch_add(1, Ordering::AcqRel);
            // Slowest first; a read racing with this undoes its backfill.
            on_each(self.levels.iter().rev(), |(store, _)| store.delete(key)).await
        })
    }

    fn clear(&self) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            self.invalidations.fetch_add(1, Ordering::AcqRel);
            on_each(self.levels.iter().rev(), |(store, _)| store.clear()).await
        })
    }

    /// One batch per level, for the keys no faster level answered with a
    /// fresh entry; backfills and stale entries as [`Store::get`] does for
    /// one key. Fails only if a level failed and some key found no entry.
    fn get_many<'a>(
        &'a self,
        keys: &'a [&'a str],
        decoder: &'a dyn Decoder,
    ) -> BoxFuture<'a, Result<Vec<Option<Entry>>, Error>> {
        Box::pin(async move {
            let seen = self.invalidations.load(Ordering::Acquire);
            let now = self.clock.now();
            let mut found: Vec<Option<Entry>> = vec![None; keys.len()];
            // Indexes (into `keys`) still without a fresh entry.
            let mut pending: Vec<usize> = (0..keys.len()).collect();
            let mut backfilled: Vec<(usize, usize)> = Vec::new();
            let mut first_error = None;
            for (index, (store, _)) in self.levels.iter().enumerate() {
                if pending.is_empty() {
                    break;
                }
                let asked: Vec<&str> = pending.iter().map(|&i| keys[i]).collect();
                let answers = match store.get_many(&asked, decoder).await {
                    Ok(answers) if answers.len() == asked.len() => answers,
                    Ok(answers) => {
                        first_error.get_or_insert(Error::store(
                            store.name(),
                            format!(
                                "get_many answered {} entries for {} keys",
                                answers.len(),
                                asked.len()
                            ),
                        ));
                        continue;
                    }
                    // A failing level is skipped: a slower one may answer.
                    Err(error) => {
                        first_error.get_or_insert(error);
                        continue;
                    }
                };
                let mut still = Vec::with_capacity(pending.len());
                for (&key_index, answer) in pending.iter().zip(answers) {
                    let Some(entry) = answer else {
                        still.push(key_index);
                        continue;
                    };
                    if !entry.is_fresh(now) {
                        found[key_index].get_or_insert(entry);
                        still.push(key_index);
                        continue;
                    }
                    if index > 0 {
                        let remaining = Duration::try_from_secs_f64(entry.fresh_until - now).ok();
                        let _ = self
                            .write_levels(keys[key_index], &entry, remaining, index)
                            .await;
                        backfilled.push((key_index, index));
                    }
                    found[key_index] = Some(entry);
                }
                pending = still;
            }
            if !backfilled.is_empty() && self.invalidations.load(Ordering::Acquire) != seen {
                // Deleted or cleared meanwhile: take the copies back.
                for (key_index, upto) in backfilled {
                    let key = keys[key_index];
                    let _ = on_each(&self.levels[..upto], |(store, _)| store.delete(key)).await;
                }
            }
            match first_error {
                Some(error) if pending.iter().any(|&i| found[i].is_none()) => Err(error),
                _ => Ok(found),
            }
        })
    }

    /// One batch per level, each for its level TTL bounded by `ttl`; every
    /// level is attempted, the first error returned.
    fn set_many<'a>(
        &'a self,
        entries: Vec<(&'a str, Entry)>,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            on_each(self.levels.iter(), |(store, level_ttl)| {
                store.set_many(entries.clone(), Self::level_ttl(*level_ttl, ttl))
            })
            .await
        })
    }

    #[inline]
    fn get_local(&self, key: &str, visit: &mut dyn FnMut(&Entry)) -> Local {
        let l1 = &self.levels[0].0;
        if self.levels.len() == 1 {
            return l1.get_local(key, visit);
        }
        // Only a fresh L1 entry answers here; anything else asks the
        // slower levels through `get`.
        let now = self.clock.now();
        let mut fresh = false;
        let local = l1.get_local(key, &mut |entry| {
            if entry.is_fresh(now) {
                fresh = true;
                visit(entry);
            }
        });
        match local {
            Local::Found if fresh => Local::Found,
            Local::Unsupported => Local::Unsupported,
            Local::Found | Local::Missing => Local::Unsupported,
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.levels[0].0.usage()
    }
}
