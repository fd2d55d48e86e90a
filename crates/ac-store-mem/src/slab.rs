//! The per-entry bookkeeping of the eviction policy and the expiry wheel:
//! a chunked slab of nodes threaded on intrusive lists by `u32` index.
//!
//! Chunks never move, so growing the slab never copies it (no stall at a
//! million entries). A node costs 32 bytes (its key and two pairs of links)
//! plus a 2-byte tag (queue and wheel bucket) in a parallel array, and a
//! 4-byte weight only in a cache bounded by weight. Everything here runs
//! under the cache's write lock; hits never touch it.

use std::sync::Arc;

/// "No node": the end of a list.
pub(crate) const NIL: u32 = u32::MAX;

/// Nodes per chunk.
const CHUNK_BITS: u32 = 10;
const CHUNK: usize = 1 << CHUNK_BITS;

/// Which eviction queue a node is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Queue {
    /// Not in a queue (free, or the cache is unbounded).
    None,
    /// The small FIFO new keys enter.
    Small,
    /// The main FIFO with second chances.
    Main,
}

/// Which of a node's two link pairs a list uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Links {
    /// The eviction queue links.
    Queue,
    /// The expiry wheel links.
    Wheel,
}

/// One cache entry's policy links.
#[derive(Debug)]
pub(crate) struct Node {
    /// The entry's key, shared with the map; `None` while the node is free.
    pub(crate) key: Option<Arc<str>>,
    queue_prev: u32,
    /// Also the free-list link of a free node.
    queue_next: u32,
    wheel_prev: u32,
    wheel_next: u32,
}

impl Node {
    const FREE: Node = Node {
        key: None,
        queue_prev: NIL,
        queue_next: NIL,
        wheel_prev: NIL,
        wheel_next: NIL,
    };
}

/// A node's tag: its queue in the top two bits, its wheel bucket + 1 in
/// the low nine (0: not on the wheel).
const QUEUE_SHIFT: u32 = 14;
const BUCKET_MASK: u16 = (1 << 9) - 1;

/// A doubly linked list of nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct List {
    pub(crate) head: u32,
    pub(crate) tail: u32,
    pub(crate) len: usize,
}

impl List {
    pub(crate) const EMPTY: List = List {
        head: NIL,
        tail: NIL,
        len: 0,
    };

    pub(crate) fn is_empty(&self) -> bool {
        self.head == NIL
    }
}

/// The nodes, in chunks that never move.
#[derive(Debug, Default)]
pub(crate) struct Slab {
    chunks: Vec<Box<[Node]>>,
    /// Per node: queue and bucket (see [`QUEUE_SHIFT`]).
    tags: Vec<Box<[u16]>>,
    /// Per node: weight, saturated at `u32::MAX`; no chunks when unweighted.
    weights: Vec<Box<[u32]>>,
    weighted: bool,
    /// Free nodes, linked through `queue_next`.
    free: u32,
    /// Nodes handed out so far (free ones below it are on the free list).
    used: u32,
}

#[inline]
fn at(slot: u32) -> (usize, usize) {
    ((slot >> CHUNK_BITS) as usize, slot as usize & (CHUNK - 1))
}

impl Slab {
    /// A slab; `weighted` keeps a weight per node.
    pub(crate) fn new(weighted: bool) -> Self {
        Self {
            chunks: Vec::new(),
            tags: Vec::new(),
            weights: Vec::new(),
            weighted,
            free: NIL,
            used: 0,
        }
    }

    /// The queue `slot` is in.
    #[inline]
    pub(crate) fn queue(&self, slot: u32) -> Queue {
        let (c, i) = at(slot);
        match self.tags[c][i] >> QUEUE_SHIFT {
            1 => Queue::Small,
            2 => Queue::Main,
            _ => Queue::None,
        }
    }

    #[inline]
    pub(crate) fn set_queue(&mut self, slot: u32, queue: Queue) {
        let (c, i) = at(slot);
        let bits: u16 = match queue {
            Queue::None => 0,
            Queue::Small => 1,
            Queue::Main => 2,
        };
        let tag = &mut self.tags[c][i];
        *tag = (*tag & BUCKET_MASK) | (bits << QUEUE_SHIFT);
    }

    /// The wheel bucket `slot` is filed in, or [`crate::wheel::NO_BUCKET`].
    #[inline]
    pub(crate) fn bucket(&self, slot: u32) -> u16 {
        let (c, i) = at(slot);
        (self.tags[c][i] & BUCKET_MASK).wrapping_sub(1)
    }

    #[inline]
    pub(crate) fn set_bucket(&mut self, slot: u32, bucket: u16) {
        let (c, i) = at(slot);
        debug_assert!(bucket == crate::wheel::NO_BUCKET || bucket < BUCKET_MASK);
        let tag = &mut self.tags[c][i];
        *tag = (*tag & !BUCKET_MASK) | (bucket.wrapping_add(1) & BUCKET_MASK);
    }

    /// The weight of `slot` (0 in an unweighted slab).
    #[inline]
    pub(crate) fn weight(&self, slot: u32) -> u32 {
        let (c, i) = at(slot);
        self.weights.get(c).map_or(0, |w| w[i])
    }

    #[inline]
    pub(crate) fn set_weight(&mut self, slot: u32, weight: u32) {
        let (c, i) = at(slot);
        if let Some(w) = self.weights.get_mut(c) {
            w[i] = weight;
        }
    }

    #[inline]
    pub(crate) fn get(&self, slot: u32) -> &Node {
        let (c, i) = at(slot);
        &self.chunks[c][i]
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, slot: u32) -> &mut Node {
        let (c, i) = at(slot);
        &mut self.chunks[c][i]
    }

    /// A fresh node for `key`, in no list.
    pub(crate) fn alloc(&mut self, key: Arc<str>, weight: u32) -> u32 {
        let slot = if self.free != NIL {
            let slot = self.free;
            self.free = self.get(slot).queue_next;
            slot
        } else {
            // u32::MAX is NIL: one node fewer than the index space.
            assert!(self.used < NIL, "InMemCache holds at most 2^32 - 1 entries");
            if self.used as usize == self.chunks.len() * CHUNK {
                self.chunks
                    .push((0..CHUNK).map(|_| Node::FREE).collect::<Vec<_>>().into());
                self.tags.push(vec![0; CHUNK].into());
                if self.weighted {
                    self.weights.push(vec![0; CHUNK].into());
                }
            }
            self.used += 1;
            self.used - 1
        };
        let node = self.get_mut(slot);
        *node = Node::FREE;
        node.key = Some(key);
        let (c, i) = at(slot);
        self.tags[c][i] = 0;
        self.set_weight(slot, weight);
        slot
    }

    /// Returns a node (already out of every list) to the free list.
    pub(crate) fn free(&mut self, slot: u32) -> Option<Arc<str>> {
        let free = self.free;
        debug_assert_eq!(self.queue(slot), Queue::None);
        debug_assert_eq!(self.bucket(slot), crate::wheel::NO_BUCKET);
        let node = self.get_mut(slot);
        let key = node.key.take();
        node.queue_next = free;
        self.free = slot;
        key
    }

    /// Nodes in use.
    #[cfg(test)]
    pub(crate) fn live(&self) -> usize {
        self.chunks
            .iter()
            .flat_map(|c| c.iter())
            .filter(|n| n.key.is_some())
            .count()
    }

    /// Keys of every node in use.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &Arc<str>> {
        self.chunks
            .iter()
            .flat_map(|c| c.iter())
            .filter_map(|n| n.key.as_ref())
    }

    #[inline]
    fn links(&self, slot: u32, links: Links) -> (u32, u32) {
        let n = self.get(slot);
        match links {
            Links::Queue => (n.queue_prev, n.queue_next),
            Links::Wheel => (n.wheel_prev, n.wheel_next),
        }
    }

    #[inline]
    fn set_prev(&mut self, slot: u32, links: Links, prev: u32) {
        let n = self.get_mut(slot);
        match links {
            Links::Queue => n.queue_prev = prev,
            Links::Wheel => n.wheel_prev = prev,
        }
    }

    #[inline]
    fn set_next(&mut self, slot: u32, links: Links, next: u32) {
        let n = self.get_mut(slot);
        match links {
            Links::Queue => n.queue_next = next,
            Links::Wheel => n.wheel_next = next,
        }
    }

    /// The node after `slot` in its `links` list.
    #[inline]
    pub(crate) fn next(&self, slot: u32, links: Links) -> u32 {
        self.links(slot, links).1
    }

    /// Appends `slot` to `list`.
    pub(crate) fn push_back(&mut self, list: &mut List, links: Links, slot: u32) {
        self.set_prev(slot, links, list.tail);
        self.set_next(slot, links, NIL);
        if list.tail == NIL {
            list.head = slot;
        } else {
            self.set_next(list.tail, links, slot);
        }
        list.tail = slot;
        list.len += 1;
    }

    /// Takes `slot` out of `list`.
    pub(crate) fn unlink(&mut self, list: &mut List, links: Links, slot: u32) {
        let (prev, next) = self.unlink_neighbours(slot, links);
        if prev == NIL {
            list.head = next;
        }
        if next == NIL {
            list.tail = prev;
        }
        list.len -= 1;
    }

    /// Takes `slot` out of whatever `links` list holds it, fixing its
    /// neighbours; returns its old `(prev, next)` so the caller fixes the
    /// list's head (`prev == NIL`) and tail (`next == NIL`).
    pub(crate) fn unlink_neighbours(&mut self, slot: u32, links: Links) -> (u32, u32) {
        let (prev, next) = self.links(slot, links);
        if prev != NIL {
            self.set_next(prev, links, next);
        }
        if next != NIL {
            self.set_prev(next, links, prev);
        }
        self.set_prev(slot, links, NIL);
        self.set_next(slot, links, NIL);
        (prev, next)
    }

    /// Moves every node of `from` to the end of `to`, in O(1).
    pub(crate) fn append(&mut self, to: &mut List, links: Links, from: &mut List) {
        if from.is_empty() {
            return;
        }
        if to.is_empty() {
            *to = *from;
        } else {
            self.set_next(to.tail, links, from.head);
            self.set_prev(from.head, links, to.tail);
            to.tail = from.tail;
            to.len += from.len;
        }
        *from = List::EMPTY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(slab: &Slab, list: &List, links: Links) -> Vec<u32> {
        let mut out = Vec::new();
        let mut at = list.head;
        while at != NIL {
            out.push(at);
            at = slab.next(at, links);
        }
        assert_eq!(out.len(), list.len, "len matches the links");
        out
    }

    #[test]
    fn lists_link_unlink_and_append_in_order() {
        let mut slab = Slab::new(true);
        let slots: Vec<u32> = (0..5)
            .map(|i| slab.alloc(format!("k{i}").into(), 1))
            .collect();
        let (mut a, mut b) = (List::EMPTY, List::EMPTY);
        for &s in &slots[..3] {
            slab.push_back(&mut a, Links::Queue, s);
            slab.push_back(&mut b, Links::Wheel, s);
        }
        slab.unlink(&mut a, Links::Queue, slots[1]);
        assert_eq!(collect(&slab, &a, Links::Queue), [slots[0], slots[2]]);
        assert_eq!(
            collect(&slab, &b, Links::Wheel),
            &slots[..3],
            "the other links are untouched"
        );
        let mut c = List::EMPTY;
        slab.push_back(&mut c, Links::Queue, slots[3]);
        slab.push_back(&mut c, Links::Queue, slots[4]);
        slab.append(&mut a, Links::Queue, &mut c);
        assert!(c.is_empty());
        assert_eq!(
            collect(&slab, &a, Links::Queue),
            [slots[0], slots[2], slots[3], slots[4]]
        );
    }

    #[test]
    fn freed_nodes_are_reused_and_chunks_grow_without_moving() {
        let mut slab = Slab::new(true);
        let n = CHUNK * 2 + 3;
        let slots: Vec<u32> = (0..n)
            .map(|i| slab.alloc(format!("{i}").into(), 0))
            .collect();
        assert_eq!(slab.live(), n);
        let first = std::ptr::from_ref(slab.get(0));
        assert_eq!(slab.free(slots[7]).as_deref(), Some("7"));
        assert_eq!(slab.alloc("again".into(), 0), slots[7], "free slot reused");
        assert_eq!(slab.alloc("new".into(), 0) as usize, n, "then fresh ones");
        assert_eq!(std::ptr::from_ref(slab.get(0)), first, "chunks do not move");
    }

    #[test]
    fn tags_and_weights_are_per_node() {
        let mut slab = Slab::new(true);
        let (a, b) = (slab.alloc("a".into(), 7), slab.alloc("b".into(), u32::MAX));
        assert_eq!(
            (slab.queue(a), slab.bucket(a)),
            (Queue::None, crate::wheel::NO_BUCKET)
        );
        slab.set_queue(a, Queue::Main);
        slab.set_bucket(a, 255);
        slab.set_bucket(b, 0);
        slab.set_queue(b, Queue::Small);
        assert_eq!(
            (slab.queue(a), slab.bucket(a), slab.weight(a)),
            (Queue::Main, 255, 7)
        );
        assert_eq!(
            (slab.queue(b), slab.bucket(b), slab.weight(b)),
            (Queue::Small, 0, u32::MAX)
        );
        slab.set_bucket(a, crate::wheel::NO_BUCKET);
        assert_eq!(
            (slab.queue(a), slab.bucket(a)),
            (Queue::Main, crate::wheel::NO_BUCKET)
        );
        let mut unweighted = Slab::new(false);
        let c = unweighted.alloc("c".into(), 9);
        assert_eq!(unweighted.weight(c), 0, "no weights kept");
        assert_eq!(size_of::<Node>(), 32);
    }
}
