//! A hierarchical timer wheel of entries with a finite lifetime, so that
//! expired entries are found in O(1) amortized instead of by a scan.
//!
//! Four levels of 64 buckets of 1 s, 64 s, ~68 min and ~3 days cover ~194
//! days; a later deadline waits in the farthest bucket and is filed again
//! when that bucket comes due. When time enters a bucket, its whole list is
//! spliced in O(1) onto `expired` (level 0: every node in it has expired) or
//! `cascade` (higher levels: nodes to check and file again one level down).
//! Callers drain both a few nodes per write, so no write pays for a large
//! bucket at once. Deadlines are rounded up to the next whole second: an
//! entry is reclaimed at most ~1 s after it expires (reads see the exact
//! deadline in the record).

use crate::slab::{Links, List, NIL, Slab};

/// The `bucket` of a node in no wheel list (no deadline).
pub(crate) const NO_BUCKET: u16 = u16::MAX;

const BITS: u32 = 6;
const SLOTS: u64 = 1 << BITS;
const LEVELS: u32 = 4;

/// The wheel: bucket lists by level, plus the lists of due nodes.
#[derive(Debug)]
pub(crate) struct Wheel {
    buckets: Vec<List>,
    /// Nodes of due level-0 buckets: all expired (a rewrite would have
    /// moved them).
    expired: List,
    /// Nodes of due higher-level buckets, to file again.
    cascade: List,
    /// The last whole second the wheel was advanced to.
    now: u64,
}

/// What the wheel hands back from its due lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// A node whose deadline passed.
    Expired(u32),
    /// A node to check and file again (it may have expired too).
    Cascade(u32),
}

impl Wheel {
    pub(crate) fn new() -> Self {
        Self {
            buckets: vec![List::EMPTY; (SLOTS * u64::from(LEVELS)) as usize],
            expired: List::EMPTY,
            cascade: List::EMPTY,
            now: 0,
        }
    }

    /// The whole second after which an entry alive until `expires_at`
    /// (inclusive) may be reclaimed; `None` for no deadline.
    fn tick(expires_at: f64) -> Option<u64> {
        if expires_at.is_nan() || expires_at == f64::INFINITY {
            return None;
        }
        // `as` saturates: negative -> 0, huge -> u64::MAX.
        Some((expires_at.floor() as u64).saturating_add(1))
    }

    fn bucket_for(&self, tick: u64) -> u16 {
        // Never a bucket already due: a late deadline waits one second.
        let tick = tick.max(self.now.saturating_add(1));
        for level in 0..LEVELS {
            let shift = BITS * level;
            if (tick >> shift) - (self.now >> shift) < SLOTS {
                return (u64::from(level) * SLOTS + ((tick >> shift) & (SLOTS - 1))) as u16;
            }
        }
        let shift = BITS * (LEVELS - 1);
        let farthest = ((self.now >> shift) + SLOTS - 1) & (SLOTS - 1);
        (u64::from(LEVELS - 1) * SLOTS + farthest) as u16
    }

    /// Files `slot` under `expires_at` (moving it if it was filed).
    pub(crate) fn schedule(&mut self, slab: &mut Slab, slot: u32, expires_at: f64) {
        self.deschedule(slab, slot);
        let Some(tick) = Self::tick(expires_at) else {
            return;
        };
        let bucket = self.bucket_for(tick);
        slab.push_back(&mut self.buckets[bucket as usize], Links::Wheel, slot);
        slab.set_bucket(slot, bucket);
    }

    /// Takes `slot` out of the wheel, if it is in it.
    pub(crate) fn deschedule(&mut self, slab: &mut Slab, slot: u32) {
        let bucket = slab.bucket(slot);
        if bucket == NO_BUCKET {
            return;
        }
        let (prev, next) = slab.unlink_neighbours(slot, Links::Wheel);
        // The node is in its bucket's list, or in the due list that bucket
        // was spliced onto since: a bucket's own list never holds a node
        // that was spliced away, so its head/tail tell which.
        let own = &mut self.buckets[bucket as usize];
        let due = if u64::from(bucket) < SLOTS {
            &mut self.expired
        } else {
            &mut self.cascade
        };
        if prev == NIL {
            if own.head == slot {
                own.head = next;
            } else {
                debug_assert_eq!(due.head, slot);
                due.head = next;
            }
        }
        if next == NIL {
            if own.tail == slot {
                own.tail = prev;
            } else {
                debug_assert_eq!(due.tail, slot);
                due.tail = prev;
            }
        }
        slab.set_bucket(slot, NO_BUCKET);
    }

    /// Moves the buckets that time `now` has entered onto the due lists:
    /// at most 64 splices per level, however far time jumped.
    pub(crate) fn advance(&mut self, slab: &mut Slab, now: f64) {
        let now = if now.is_nan() { 0 } else { now.floor() as u64 };
        if now <= self.now {
            return;
        }
        for level in 0..LEVELS {
            let shift = BITS * level;
            let (from, to) = ((self.now >> shift) + 1, now >> shift);
            if to < from {
                break; // higher levels turn slower: nothing due there either
            }
            let due = if level == 0 {
                &mut self.expired
            } else {
                &mut self.cascade
            };
            for step in 0..(to - from).saturating_add(1).min(SLOTS) {
                let slot = from.wrapping_add(step);
                let bucket = u64::from(level) * SLOTS + (slot & (SLOTS - 1));
                slab.append(due, Links::Wheel, &mut self.buckets[bucket as usize]);
            }
        }
        self.now = now;
    }

    /// Takes the next due node out of the wheel: expired ones first.
    pub(crate) fn pop_due(&mut self, slab: &mut Slab, cascade: bool) -> Option<Due> {
        let head = if !self.expired.is_empty() {
            self.expired.head
        } else if cascade && !self.cascade.is_empty() {
            self.cascade.head
        } else {
            return None;
        };
        let expired = !self.expired.is_empty();
        self.deschedule(slab, head);
        Some(if expired {
            Due::Expired(head)
        } else {
            Due::Cascade(head)
        })
    }

    /// Whether nodes known to have expired wait.
    #[cfg(test)]
    pub(crate) fn has_expired(&self) -> bool {
        !self.expired.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wheel over `n` nodes with the given deadlines.
    fn filed(deadlines: &[f64], now: f64) -> (Wheel, Slab, Vec<u32>) {
        let (mut wheel, mut slab) = (Wheel::new(), Slab::new(false));
        wheel.advance(&mut slab, now);
        let slots = deadlines
            .iter()
            .enumerate()
            .map(|(i, &d)| {
                let slot = slab.alloc(format!("k{i}").into(), 0);
                wheel.schedule(&mut slab, slot, d);
                slot
            })
            .collect();
        (wheel, slab, slots)
    }

    /// Advances to `now`, then drains: expired nodes, and cascades filed
    /// again at the deadline the test knows.
    fn drain(wheel: &mut Wheel, slab: &mut Slab, now: f64, deadlines: &[f64]) -> Vec<usize> {
        wheel.advance(slab, now);
        let mut out = Vec::new();
        while let Some(due) = wheel.pop_due(slab, true) {
            match due {
                Due::Expired(slot) => out.push(slot as usize),
                Due::Cascade(slot) if deadlines[slot as usize] < now => out.push(slot as usize),
                Due::Cascade(slot) => wheel.schedule(slab, slot, deadlines[slot as usize]),
            }
        }
        out.sort_unstable();
        out
    }

    #[test]
    fn entries_come_due_in_the_second_after_their_deadline_at_every_level() {
        let t0 = 1_700_000_000.0;
        // One deadline per level and beyond the last one (~194 days).
        let deadlines = [
            t0 + 0.5,
            t0 + 30.0,
            t0 + 3_000.0,
            t0 + 200_000.0,
            t0 + 3e7,
            t0 + 1e9,
        ];
        let (mut wheel, mut slab, _) = filed(&deadlines, t0);
        for (i, &deadline) in deadlines.iter().enumerate() {
            // Nothing is due before its deadline...
            let early = drain(&mut wheel, &mut slab, deadline - 0.001, &deadlines);
            assert!(early.is_empty(), "entry {i} came due early: {early:?}");
            // ...and everything is, in the second after it.
            let now = deadline.floor() + 1.0;
            let due = drain(&mut wheel, &mut slab, now, &deadlines);
            assert_eq!(due, [i], "at {now}: {due:?}");
        }
    }

    #[test]
    fn a_time_jump_splices_at_most_every_bucket_once() {
        let t0 = 1_000.0;
        let deadlines: Vec<f64> = (0..500).map(|i| t0 + f64::from(i) * 997.0).collect();
        let (mut wheel, mut slab, _) = filed(&deadlines, t0);
        let due = drain(&mut wheel, &mut slab, t0 + 1e12, &deadlines);
        assert_eq!(due, (0..500).collect::<Vec<_>>());
    }

    #[test]
    fn rescheduled_and_descheduled_nodes_leave_their_old_bucket() {
        let t0 = 50.0;
        let mut deadlines = vec![t0 + 5.0, t0 + 5.0, t0 + 5.0, t0 + 100.0];
        let (mut wheel, mut slab, slots) = filed(&deadlines, t0);
        wheel.deschedule(&mut slab, slots[0]);
        deadlines[1] = t0 + 500.0;
        wheel.schedule(&mut slab, slots[1], deadlines[1]);
        assert_eq!(drain(&mut wheel, &mut slab, t0 + 10.0, &deadlines), [2]);
        assert_eq!(drain(&mut wheel, &mut slab, t0 + 200.0, &deadlines), [3]);
        assert_eq!(drain(&mut wheel, &mut slab, t0 + 600.0, &deadlines), [1]);
    }

    #[test]
    fn nodes_leave_due_lists_from_any_position() {
        let t0 = 10.0;
        let deadlines = vec![t0 + 1.0; 4];
        let (mut wheel, mut slab, slots) = filed(&deadlines, t0);
        wheel.advance(&mut slab, t0 + 3.0);
        // Head, tail and middle of the spliced list.
        for slot in [slots[0], slots[3], slots[1]] {
            wheel.deschedule(&mut slab, slot);
        }
        assert_eq!(wheel.pop_due(&mut slab, true), Some(Due::Expired(slots[2])));
        assert_eq!(wheel.pop_due(&mut slab, true), None);
        assert!(!wheel.has_expired());
    }

    #[test]
    fn absurd_times_neither_overflow_nor_lose_entries() {
        let deadlines = [5.0, 1e25, f64::MAX, -3.0];
        let (mut wheel, mut slab, slots) = filed(&deadlines, 1.0);
        // Past u64 seconds: time saturates; only f64::MAX is still ahead.
        assert_eq!(drain(&mut wheel, &mut slab, 1e30, &deadlines), [0, 1, 3]);
        assert_ne!(slab.bucket(slots[2]), NO_BUCKET, "still filed");
        wheel.advance(&mut slab, f64::INFINITY);
        assert_eq!(wheel.pop_due(&mut slab, true), None);
    }

    #[test]
    fn no_deadline_is_never_filed() {
        let (mut wheel, mut slab, slots) = filed(&[f64::INFINITY], 0.0);
        assert_eq!(slab.bucket(slots[0]), NO_BUCKET);
        wheel.advance(&mut slab, 1e15);
        assert_eq!(wheel.pop_due(&mut slab, true), None);
    }
}
