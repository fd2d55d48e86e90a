//! What differs on a Redis Cluster: multi-key commands go per hash slot.

use fred::prelude::ClientLike;

use crate::{BATCH, RedisCache};

impl RedisCache {
    /// Whether the connected server is a cluster.
    pub(crate) fn clustered(&self) -> bool {
        self.pool.next().is_clustered()
    }
}

/// Splits `keys` into groups that may share one multi-key command: one
/// group per hash slot on a cluster, one group otherwise, at most [`BATCH`]
/// keys each. Keeps the index of each key in `keys`.
pub(crate) fn slot_groups<K: Clone>(
    keys: &[K],
    bytes: impl Fn(&K) -> &[u8],
    clustered: bool,
) -> Vec<Vec<(usize, K)>> {
    let mut groups: Vec<(u16, Vec<(usize, K)>)> = Vec::new();
    for (index, key) in keys.iter().enumerate() {
        let slot = if clustered {
            fred::util::redis_keyslot(bytes(key))
        } else {
            0
        };
        match groups.iter_mut().find(|(s, _)| *s == slot) {
            Some((_, group)) => group.push((index, key.clone())),
            None => groups.push((slot, vec![(index, key.clone())])),
        }
    }
    groups
        .into_iter()
        .flat_map(|(_, group)| {
            group
                .chunks(BATCH)
                .map(<[(usize, K)]>::to_vec)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_groups_split_by_slot_and_keep_order() {
        let keys: Vec<String> = ["{a}1", "{b}1", "{a}2"].map(String::from).to_vec();
        let groups = slot_groups(&keys, |k| k.as_bytes(), true);
        assert_eq!(groups.len(), 2);
        assert_eq!(
            groups[0],
            vec![(0, "{a}1".to_owned()), (2, "{a}2".to_owned())]
        );
        assert_eq!(slot_groups(&keys, |k| k.as_bytes(), false).len(), 1);
    }
}
