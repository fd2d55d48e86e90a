//! The ghost of S3-FIFO: which keys recently left the small queue without
//! a hit, so that their next miss goes straight to the main queue.
//!
//! A table of 16-bit fingerprints indexed by key hash, half as many slots
//! as the cache holds entries: an insert overwrites whatever the slot held,
//! so older ghosts fade as new ones arrive (about the last half-capacity
//! of evictions are remembered, as the exact FIFO ghost of the paper
//! does). 2 bytes per slot, i.e. 1 byte per entry; no allocation per key,
//! O(1) always. A false match (about 1 in 65535) only admits a key to main early.

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Ghost {
    slots: Vec<u16>,
    /// The table never grows beyond this many slots.
    max_slots: usize,
}

/// Slots at least (tiny caches).
const MIN_SLOTS: usize = 64;

impl Ghost {
    /// A ghost for a cache of at most `max_entries` (if bounded by count).
    pub(crate) fn new(max_entries: Option<usize>) -> Self {
        let max_slots = max_entries.map_or(usize::MAX, |max| (max / 2).max(MIN_SLOTS));
        Self {
            slots: vec![0; MIN_SLOTS.min(max_slots)],
            max_slots,
        }
    }

    #[inline]
    fn index(&self, hash: u64) -> (usize, u16) {
        // High bits pick the slot (multiply-shift: any table length), low
        // bits are the fingerprint; 0 marks an empty slot.
        let index = ((u128::from(hash) * self.slots.len() as u128) >> 64) as usize;
        (index, (hash as u16).max(1))
    }

    /// Remembers `hash`.
    pub(crate) fn insert(&mut self, hash: u64) {
        let (index, fingerprint) = self.index(hash);
        self.slots[index] = fingerprint;
    }

    /// Whether `hash` was remembered (and not overwritten since).
    pub(crate) fn contains(&self, hash: u64) -> bool {
        let (index, fingerprint) = self.index(hash);
        self.slots[index] == fingerprint
    }

    /// Sizes the table for `entries` held: half as many slots, reached by
    /// doubling and never beyond `max_slots`. A resize forgets the ghosts
    /// (a zeroed allocation: no copy, no stall).
    pub(crate) fn fit(&mut self, entries: usize) {
        let want = (entries / 2).min(self.max_slots);
        let len = self.slots.len();
        if want >= 2 * len || (want > len && want == self.max_slots) {
            self.slots = vec![0; want];
        }
    }

    /// Forgets every ghost.
    pub(crate) fn clear(&mut self) {
        self.slots.fill(0);
    }

    /// Slots in the table.
    #[cfg(test)]
    pub(crate) fn slots(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(i: u64) -> u64 {
        i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) ^ 0xABCD
    }

    #[test]
    fn remembers_recent_ghosts_and_fades_old_ones() {
        let mut ghost = Ghost::new(Some(2_000));
        ghost.fit(2_000);
        assert_eq!(ghost.slots(), 1_000);
        for i in 0..500 {
            ghost.insert(hash(i));
        }
        let recent = (0..500).filter(|&i| ghost.contains(hash(i))).count();
        assert!(
            recent > 350,
            "most of the last half-table remembered: {recent}"
        );
        for i in 500..20_000 {
            ghost.insert(hash(i));
        }
        let old = (0..500).filter(|&i| ghost.contains(hash(i))).count();
        assert!(old < 5, "old ghosts fade: {old}");
        let never = (1_000_000..1_100_000)
            .filter(|&i| ghost.contains(hash(i)))
            .count();
        assert!(never < 10, "false matches are rare: {never}");
        ghost.clear();
        assert!(!ghost.contains(hash(19_999)));
    }

    #[test]
    fn grows_by_doubling_up_to_half_the_bound() {
        let mut ghost = Ghost::new(Some(10_000));
        assert_eq!(ghost.slots(), MIN_SLOTS);
        ghost.fit(200);
        assert_eq!(ghost.slots(), MIN_SLOTS, "no resize below double");
        ghost.fit(256);
        assert_eq!(ghost.slots(), 128);
        ghost.fit(9_999);
        assert_eq!(ghost.slots(), 4_999);
        ghost.fit(10_000);
        assert_eq!(ghost.slots(), 5_000, "exactly half the bound at the bound");
        ghost.fit(1_000_000);
        assert_eq!(ghost.slots(), 5_000);
    }
}
