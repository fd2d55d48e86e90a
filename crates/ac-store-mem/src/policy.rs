//! What a write does under the cache's lock: the map update, S3-FIFO
//! admission and eviction, expiry through the wheel, the exact totals.
//!
//! S3-FIFO (Yang et al., SOSP '23): a new key enters a small FIFO (1 % of
//! the bound); leaving it, a key that was read there moves to the main
//! FIFO, one that was not is evicted and remembered in the ghost, so its
//! next miss enters main directly. Main gives each read entry another
//! round (its counter, saturating at 3, drops by one per round). Reads
//! only bump that counter in the record, with relaxed atomics, lock-free.
//! Each write does O(1) amortized work: a round costs one map lookup, and
//! a write earns [`VISITS_PER_WRITE`] rounds (banked up to a cap); without
//! credit, an eviction takes the next entry regardless.

use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use ac_core::Entry;

use crate::ghost::Ghost;
use crate::slab::{Links, List, NIL, Node, Queue, Slab};
use crate::wheel::{Due, Wheel};
use crate::{EvictionCause, MapRef, Record};

/// A read counter saturates here (S3-FIFO's 2 bits).
pub(crate) const MAX_FREQ: u8 = 3;

/// Second chances (one map lookup each) a write earns for evictions.
/// Unspent credit carries over up to [`MAX_CREDIT`], so that a long run of
/// read entries at a queue's head (the small queue right after the cache
/// first fills up holds everything) is passed without evicting any of
/// them, and no write pays for more than [`MAX_CREDIT`] lookups.
pub(crate) const VISITS_PER_WRITE: u32 = 16;

/// See [`VISITS_PER_WRITE`]: about 0.4 ms of lookups at most.
const MAX_CREDIT: u32 = 4096;

/// Due wheel nodes each write handles, so expired entries never pile up.
const RECLAIMS_PER_WRITE: usize = 8;

/// Due wheel nodes examined for an expired entry before evicting a live one.
const RECLAIMS_BEFORE_EVICTING: usize = 16;

/// The approximate bytes an entry holds, for [`ac_core::Usage`] and the
/// default weigher: a function of key and entry alone, so the running
/// total subtracts exactly what it added.
pub(crate) fn bytes_of(key: &str, entry: &Entry) -> u64 {
    let node = size_of::<Node>() + size_of::<u16>();
    (key.len() + size_of::<Record>() + node + entry.value.shallow_size()) as u64
}

/// Evictions and removals for the listener, collected under the lock and
/// reported after it is released.
#[derive(Debug, Default)]
pub(crate) struct Events {
    on: bool,
    pub(crate) list: Vec<(Arc<str>, EvictionCause)>,
}

impl Events {
    pub(crate) fn new(on: bool) -> Self {
        Self {
            on,
            list: Vec::new(),
        }
    }

    #[inline]
    fn push(&mut self, key: impl FnOnce() -> Arc<str>, cause: EvictionCause) {
        if self.on {
            self.list.push((key(), cause));
        }
    }
}

/// The bounds and the small queue's share of them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub(crate) max_entries: Option<usize>,
    pub(crate) max_weight: Option<u64>,
}

impl Bounds {
    fn bounded(&self) -> bool {
        self.max_entries.is_some() || self.max_weight.is_some()
    }
}

/// Everything writes change, behind the cache's mutex.
#[derive(Debug)]
pub(crate) struct State {
    bounds: Bounds,
    slab: Slab,
    small: List,
    main: List,
    small_weight: u64,
    wheel: Wheel,
    ghost: Ghost,
    hasher: foldhash::fast::FixedState,
    /// Second chances evictions may still give: see [`VISITS_PER_WRITE`].
    credit: u32,
    /// Entries held (expired ones not yet reclaimed included).
    pub(crate) count: usize,
    /// Their total weight (each saturated at `u32::MAX`).
    pub(crate) weight: u64,
    /// Their total [`bytes_of`].
    pub(crate) bytes: u64,
}

impl State {
    pub(crate) fn new(bounds: Bounds) -> Self {
        Self {
            bounds,
            slab: Slab::new(bounds.max_weight.is_some()),
            small: List::EMPTY,
            main: List::EMPTY,
            small_weight: 0,
            wheel: Wheel::new(),
            ghost: Ghost::new(bounds.max_entries),
            hasher: foldhash::fast::FixedState::with_seed(0x5eed_0f53_f1f0),
            credit: 0,
            count: 0,
            weight: 0,
            bytes: 0,
        }
    }

    /// Stores `entry` under `key` (only over no live entry if `if_absent`),
    /// then reclaims and evicts. Returns whether it stored.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn write(
        &mut self,
        map: &MapRef<'_>,
        key: &str,
        entry: Entry,
        expires_at: f64,
        weight: u64,
        now: f64,
        if_absent: bool,
        events: &mut Events,
    ) -> bool {
        self.wheel.advance(&mut self.slab, now);
        let old = map.get(key);
        if if_absent && old.is_some_and(|old| old.live(now)) {
            return false;
        }
        if self.bounds.max_weight.is_some_and(|max| weight > max) {
            // Too heavy to keep: not stored, and what it would replace goes.
            if let Some(old) = old {
                let cause = if old.live(now) {
                    EvictionCause::Replaced
                } else {
                    EvictionCause::Expired
                };
                self.remove(map, old.slot, cause, events);
            }
            events.push(|| key.into(), EvictionCause::Size);
            return false;
        }
        let weight = u32::try_from(weight).unwrap_or(u32::MAX);
        let slot = match old {
            Some(old) => {
                let slot = old.slot;
                let live = old.live(now);
                // A rewrite of a live entry counts as a use, as a read does.
                let freq = if live {
                    (old.freq.load(Ordering::Relaxed) + 1).min(MAX_FREQ)
                } else {
                    0
                };
                let key = self.key(slot).clone();
                self.bytes = self.bytes - bytes_of(&key, &old.entry) + bytes_of(&key, &entry);
                map.insert(Arc::clone(&key), Record::new(entry, expires_at, slot, freq));
                self.reweigh(slot, weight);
                self.wheel.schedule(&mut self.slab, slot, expires_at);
                let cause = if live {
                    EvictionCause::Replaced
                } else {
                    EvictionCause::Expired
                };
                events.push(|| key, cause);
                slot
            }
            None => {
                let key: Arc<str> = key.into();
                let slot = self.slab.alloc(Arc::clone(&key), weight);
                self.bytes += bytes_of(&key, &entry);
                self.count += 1;
                self.weight += u64::from(self.slab.weight(slot));
                if self.bounds.bounded() {
                    self.admit(slot, &key);
                }
                self.wheel.schedule(&mut self.slab, slot, expires_at);
                map.insert(key, Record::new(entry, expires_at, slot, 0));
                slot
            }
        };
        self.maintain(map, slot, now, events);
        true
    }

    /// Removes the entry under `key`, if any.
    pub(crate) fn delete(&mut self, map: &MapRef<'_>, key: &str, now: f64, events: &mut Events) {
        self.wheel.advance(&mut self.slab, now);
        if let Some(old) = map.get(key) {
            let cause = if old.live(now) {
                EvictionCause::Removed
            } else {
                EvictionCause::Expired
            };
            self.remove(map, old.slot, cause, events);
        }
    }

    /// Removes every entry.
    pub(crate) fn clear(&mut self, map: &MapRef<'_>, now: f64, events: &mut Events) {
        if events.on {
            for key in self.slab.keys() {
                let live = map.get(&**key).is_some_and(|record| record.live(now));
                let cause = if live {
                    EvictionCause::Removed
                } else {
                    EvictionCause::Expired
                };
                events.push(|| Arc::clone(key), cause);
            }
        }
        map.clear();
        let mut ghost = std::mem::replace(&mut self.ghost, Ghost::new(Some(0)));
        ghost.clear();
        *self = Self {
            ghost,
            ..Self::new(self.bounds)
        };
    }

    /// Reclaims every entry the wheel has due; returns how many.
    pub(crate) fn sweep(&mut self, map: &MapRef<'_>, now: f64, events: &mut Events) -> usize {
        self.wheel.advance(&mut self.slab, now);
        self.reclaim(map, now, usize::MAX, usize::MAX, events)
    }

    #[inline]
    fn key(&self, slot: u32) -> &Arc<str> {
        self.slab
            .get(slot)
            .key
            .as_ref()
            .expect("every mapped slot holds its key")
    }

    fn hash(&self, key: &str) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Puts a new key in the small queue, or in main if its ghost is there.
    fn admit(&mut self, slot: u32, key: &str) {
        self.ghost.fit(self.count);
        let queue = if self.ghost.contains(self.hash(key)) {
            Queue::Main
        } else {
            Queue::Small
        };
        self.enqueue(slot, queue);
    }

    fn enqueue(&mut self, slot: u32, queue: Queue) {
        let list = match queue {
            Queue::Small => {
                self.small_weight += u64::from(self.slab.weight(slot));
                &mut self.small
            }
            Queue::Main => &mut self.main,
            Queue::None => return,
        };
        self.slab.push_back(list, Links::Queue, slot);
        self.slab.set_queue(slot, queue);
    }

    fn dequeue(&mut self, slot: u32) {
        let list = match self.slab.queue(slot) {
            Queue::Small => {
                self.small_weight -= u64::from(self.slab.weight(slot));
                &mut self.small
            }
            Queue::Main => &mut self.main,
            Queue::None => return,
        };
        self.slab.unlink(list, Links::Queue, slot);
        self.slab.set_queue(slot, Queue::None);
    }

    fn reweigh(&mut self, slot: u32, weight: u32) {
        let old = self.slab.weight(slot);
        self.slab.set_weight(slot, weight);
        // An unweighted slab keeps no weights: every weight is 0 there.
        let weight = self.slab.weight(slot);
        if self.slab.queue(slot) == Queue::Small {
            self.small_weight = self.small_weight - u64::from(old) + u64::from(weight);
        }
        self.weight = self.weight - u64::from(old) + u64::from(weight);
    }

    /// Takes the entry in `slot` out of the map if `should` says so of its
    /// record (one lookup), then out of the queues and the wheel. Returns
    /// the record if it stays.
    fn remove_if<'m>(
        &mut self,
        map: &'m MapRef<'_>,
        slot: u32,
        cause: EvictionCause,
        events: &mut Events,
        mut should: impl FnMut(&Record) -> bool,
    ) -> Option<&'m Record> {
        match map.remove_if(&**self.key(slot), |_, record| should(record)) {
            Ok(removed) => {
                let (key, old) = removed.expect("every slot's key is in the map");
                self.bytes -= bytes_of(key, &old.entry);
                self.dequeue(slot);
                self.wheel.deschedule(&mut self.slab, slot);
                self.weight -= u64::from(self.slab.weight(slot));
                self.count -= 1;
                let key = self.slab.free(slot).expect("a used slot holds its key");
                events.push(|| key, cause);
                None
            }
            Err((_, current)) => Some(current),
        }
    }

    /// Takes the entry in `slot` out of the map, the queues and the wheel.
    fn remove(&mut self, map: &MapRef<'_>, slot: u32, cause: EvictionCause, events: &mut Events) {
        self.remove_if(map, slot, cause, events, |_| true);
    }

    fn over_bound(&self) -> bool {
        self.bounds.max_entries.is_some_and(|max| self.count > max)
            || self.bounds.max_weight.is_some_and(|max| self.weight > max)
    }

    /// Whether the small queue holds more than its 1 % share.
    fn small_over(&self) -> bool {
        self.bounds
            .max_entries
            .is_some_and(|max| self.small.len > (max / 100).max(1))
            || self
                .bounds
                .max_weight
                .is_some_and(|max| self.small_weight > (max / 100).max(1))
    }

    /// After a write: a few due wheel nodes, then evictions while over a
    /// bound, expired entries first.
    fn maintain(&mut self, map: &MapRef<'_>, written: u32, now: f64, events: &mut Events) {
        self.reclaim(map, now, usize::MAX, RECLAIMS_PER_WRITE, events);
        self.credit = (self.credit + VISITS_PER_WRITE).min(MAX_CREDIT);
        while self.over_bound() {
            if self.reclaim(map, now, 1, RECLAIMS_BEFORE_EVICTING, events) == 1 {
                continue;
            }
            if !self.evict_one(map, written, events) {
                break;
            }
        }
    }

    /// Takes up to `max_visits` due nodes off the wheel: expired entries go,
    /// others are filed again. Stops after `max_removed` removals.
    fn reclaim(
        &mut self,
        map: &MapRef<'_>,
        now: f64,
        max_removed: usize,
        max_visits: usize,
        events: &mut Events,
    ) -> usize {
        let (mut removed, mut visits) = (0, 0);
        while removed < max_removed && visits < max_visits {
            let Some(Due::Expired(slot) | Due::Cascade(slot)) =
                self.wheel.pop_due(&mut self.slab, true)
            else {
                break;
            };
            visits += 1;
            let stays = self.remove_if(map, slot, EvictionCause::Expired, events, |r| !r.live(now));
            match stays {
                Some(record) => {
                    let expires_at = record.expires_at;
                    self.wheel.schedule(&mut self.slab, slot, expires_at);
                }
                None => removed += 1,
            }
        }
        removed
    }

    /// The first node of `queue` other than `written`.
    fn head_except(&self, queue: Queue, written: u32) -> Option<u32> {
        let list = match queue {
            Queue::Small => &self.small,
            Queue::Main => &self.main,
            Queue::None => return None,
        };
        let head = match list.head {
            NIL => return None,
            head if head == written => self.slab.next(head, Links::Queue),
            head => head,
        };
        (head != NIL).then_some(head)
    }

    /// Evicts one entry by S3-FIFO, never `written` (the entry this write
    /// stored: it gets its chance in a queue); `false` if there is no other.
    /// Each second chance spends one credit; without credit it gives none:
    /// it takes the small queue's head (unproven) if there is one, else
    /// main's.
    fn evict_one(&mut self, map: &MapRef<'_>, written: u32, events: &mut Events) -> bool {
        loop {
            let exhausted = self.credit == 0;
            let small = self.head_except(Queue::Small, written);
            let main = self.head_except(Queue::Main, written);
            let (slot, from_small) = match (small, main) {
                (None, None) => return false,
                (Some(small), None) => (small, true),
                (None, Some(main)) => (main, false),
                (Some(small), Some(main)) => {
                    if exhausted || self.small_over() {
                        (small, true)
                    } else {
                        (main, false)
                    }
                }
            };
            // Unread since it was queued (or out of second chances): evicted,
            // in the same lookup that reads its counter.
            let evicted = |record: &Record| exhausted || record.freq.load(Ordering::Relaxed) == 0;
            let hash = from_small.then(|| self.hash(self.key(slot)));
            match self.remove_if(map, slot, EvictionCause::Size, events, evicted) {
                None => {
                    if let Some(hash) = hash {
                        self.ghost.insert(hash);
                    }
                    return true;
                }
                Some(record) => {
                    // Read since it was queued: another round, in main.
                    self.credit -= 1;
                    let freq = record.freq.load(Ordering::Relaxed);
                    record.freq.store(freq.saturating_sub(1), Ordering::Relaxed);
                    self.dequeue(slot);
                    self.enqueue(slot, Queue::Main);
                }
            }
        }
    }

    /// Checks every invariant the totals and lists rely on.
    #[cfg(test)]
    pub(crate) fn check(&self, map: &MapRef<'_>) {
        assert_eq!(map.len(), self.count, "map and count agree");
        assert_eq!(self.slab.live(), self.count, "one node per entry");
        let (mut bytes, mut weight, mut small) = (0, 0, 0);
        for (key, record) in map.iter() {
            let node = self.slab.get(record.slot);
            assert_eq!(node.key.as_deref(), Some(&**key), "slot points back");
            bytes += bytes_of(key, &record.entry);
            weight += u64::from(self.slab.weight(record.slot));
            if self.slab.queue(record.slot) == Queue::Small {
                small += u64::from(self.slab.weight(record.slot));
            }
            assert_eq!(
                self.slab.queue(record.slot) == Queue::None,
                !self.bounds.bounded(),
                "queued iff bounded"
            );
            assert_eq!(
                self.slab.bucket(record.slot) == crate::wheel::NO_BUCKET,
                record.expires_at == f64::INFINITY,
                "on the wheel iff it expires"
            );
        }
        assert_eq!(self.bytes, bytes, "bytes total exact");
        assert_eq!(self.weight, weight, "weight total exact");
        assert_eq!(self.small_weight, small, "small weight exact");
        if self.bounds.bounded() {
            assert_eq!(self.small.len + self.main.len, self.count);
        }
    }
}
