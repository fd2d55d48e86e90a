//! Invalidation generations: a load that began before an invalidation of
//! its key must not store its (possibly outdated) value.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

const STRIPES: usize = 64;

/// Generation counters striped by key hash: invalidating one key delays
/// the writes of only the keys sharing its stripe (1/64 of them), not all.
pub(crate) struct Generations {
    stripes: Box<[AtomicU64]>,
    hasher: foldhash::fast::FixedState,
}

impl Generations {
    pub(crate) fn new() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
            hasher: foldhash::fast::FixedState::default(),
        }
    }

    fn stripe(&self, key: &str) -> &AtomicU64 {
        // Truncation is fine: only the low bits pick a stripe.
        #[allow(clippy::cast_possible_truncation)]
        let index = self.hasher.hash_one(key) as usize % STRIPES;
        &self.stripes[index]
    }

    /// The current generation of `key`.
    /// The generation of `key` now, to check later without hashing again.
    pub(crate) fn epoch(&self, key: &str) -> Epoch<'_> {
        let stripe = self.stripe(key);
        Epoch {
            stripe,
            seen: stripe.load(Ordering::Acquire),
        }
    }

    pub(crate) fn of(&self, key: &str) -> u64 {
        self.stripe(key).load(Ordering::Acquire)
    }

    /// Invalidates `key`.
    pub(crate) fn bump(&self, key: &str) {
        self.stripe(key).fetch_add(1, Ordering::AcqRel);
    }

    /// Invalidates every key.
    pub(crate) fn bump_all(&self) {
        for stripe in &*self.stripes {
            stripe.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// A key's generation as seen at one moment.
#[derive(Clone, Copy)]
pub(crate) struct Epoch<'a> {
    stripe: &'a AtomicU64,
    seen: u64,
}

impl Epoch<'_> {
    /// Whether the key's generation is still the one seen.
    pub(crate) fn is_current(self) -> bool {
        self.stripe.load(Ordering::Acquire) == self.seen
    }
}
