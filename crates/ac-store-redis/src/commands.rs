//! The [`Store`] methods as Redis commands, and the entry bytes they
//! move.

use std::future::Future;
use std::time::Duration;

use ac_core::{BoxFuture, Decoder, Entry, Error, Store};
use ac_serde::codec::{Compression, HEADER_LEN, decode_entry, encode_entry};
use fred::bytes::Bytes;
use fred::prelude::{Expiration, KeysInterface, SetOptions};
use fred::types::{Key, Value as RedisValue};
use futures_util::StreamExt as _;

use crate::cluster::slot_groups;
use crate::{BATCH, NAME, RedisCache};

/// Escapes glob metacharacters so `prefix` matches itself in `SCAN MATCH`.
fn glob_escape(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('*');
    out
}

/// TTLs beyond this are kept without expiry: Redis refuses a `PX` whose
/// deadline overflows, and 100 years is "forever" for a cache.
const MAX_EXPIRY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Milliseconds for `SET PX`, rounded up (Redis rejects 0).
fn millis(ttl: Duration) -> i64 {
    let ms = ttl.as_nanos().div_ceil(1_000_000).max(1);
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// The `SET` expiry for a store TTL: `None` keeps the key without one.
fn expiration(ttl: Option<Duration>) -> Option<Expiration> {
    ttl.filter(|ttl| *ttl <= MAX_EXPIRY)
        .map(|ttl| Expiration::PX(millis(ttl)))
}

impl RedisCache {
    fn encode(&self, entry: &Entry) -> Result<Bytes, Error> {
        encode_entry(entry, &*self.serializer, Compression::None).map(Bytes::from)
    }

    fn decode(&self, bytes: &[u8], decoder: &dyn Decoder) -> Result<Entry, Error> {
        decode_entry(bytes, &*self.serializer, decoder, Compression::None)
    }

    /// `SET key bytes [PX ttl]`. With dedupe, when Redis already holds the
    /// same value (the payload after the 16-byte timestamp header), only
    /// the header is rewritten (`SETRANGE`) and the expiry renewed; if the
    /// key vanished meanwhile, the full value is written after all.
    fn write(
        &self,
        key: String,
        bytes: Bytes,
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        let expire = expiration(ttl);
        let dedupe = self.dedupe_writes;
        // GET, SETRANGE, STRLEN, PEXPIRE and maybe SET with dedupe.
        let commands = if dedupe { 5 } else { 1 };
        self.run(commands, move |client| async move {
            if dedupe {
                let existing: Option<Bytes> = client.get(key.as_str()).await?;
                let same = existing.as_ref().is_some_and(|old| {
                    old.len() == bytes.len() && old.get(HEADER_LEN..) == bytes.get(HEADER_LEN..)
                });
                if same {
                    let header = bytes.slice(..HEADER_LEN.min(bytes.len()));
                    client.setrange::<(), _, _>(key.as_str(), 0, header).await?;
                    // SETRANGE creates a key that vanished since the GET;
                    // such a 16-byte stub is caught here and overwritten.
                    let len: usize = client.strlen(key.as_str()).await?;
                    if len == bytes.len() {
                        let renewed: bool = match &expire {
                            Some(Expiration::PX(ms)) => {
                                client.pexpire(key.as_str(), *ms, None).await?
                            }
                            _ => {
                                client.persist::<(), _>(key.as_str()).await?;
                                true
                            }
                        };
                        if renewed {
                            return Ok(());
                        }
                    }
                }
            }
            client
                .set::<(), _, _>(key, bytes, expire, None, false)
                .await
        })
    }
}

/// Redis keeps values serialized: cached values must be serde.
impl ac_core::ByteStore for RedisCache {}

impl Store for RedisCache {
    fn name(&self) -> &'static str {
        NAME
    }

    fn get<'a>(
        &'a self,
        key: &'a str,
        decoder: &'a dyn Decoder,
    ) -> BoxFuture<'a, Result<Option<Entry>, Error>> {
        let redis_key = self.redis_key(key);
        let read = self.run(1, move |client| async move {
            client.get::<Option<Bytes>, _>(redis_key).await
        });
        Box::pin(async move {
            match read.await? {
                Some(bytes) => self.decode(&bytes, decoder).map(Some),
                None => Ok(None),
            }
        })
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        entry: Entry,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        let written = self
            .encode(&entry)
            .map(|bytes| self.write(self.redis_key(key), bytes, ttl));
        Box::pin(async move { written?.await })
    }

    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        entry: Entry,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        let bytes = self.encode(&entry);
        let redis_key = self.redis_key(key);
        Box::pin(async move {
            let bytes = bytes?;
            let expire = expiration(ttl);
            let reply: RedisValue = self
                .run(1, move |client| async move {
                    client
                        .set(redis_key, bytes, expire, Some(SetOptions::NX), false)
                        .await
                })
                .await?;
            Ok(!reply.is_null())
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        let redis_key = self.redis_key(key);
        Box::pin(self.run(1, move |client| async move {
            client.unlink::<(), _>(redis_key).await
        }))
    }

    fn clear(&self) -> BoxFuture<'_, Result<(), Error>> {
        if self.prefix.is_empty() {
            return Box::pin(std::future::ready(Err(Error::invalid_config(
                "RedisCache::clear refuses to run without a prefix: it would delete every key \
                 in the database; set .prefix(..)"
                    .to_owned(),
            ))));
        }
        let pattern = glob_escape(&self.prefix);
        let clustered = self.clustered();
        // A clear may take many round trips; bound it generously.
        Box::pin(self.run(60, move |client| async move {
            let keys = if clustered {
                client
                    .scan_cluster_buffered(pattern, Some(1000), None)
                    .boxed()
            } else {
                client.scan_buffered(pattern, Some(1000), None).boxed()
            };
            let mut pages = keys.chunks(BATCH);
            while let Some(page) = pages.next().await {
                // Keys as bytes: a key that is not UTF-8 is still ours.
                let page = page.into_iter().collect::<Result<Vec<Key>, _>>()?;
                let groups = slot_groups(&page, Key::as_bytes, clustered);
                let unlinks = groups.into_iter().map(|group| {
                    let keys: Vec<Key> = group.into_iter().map(|(_, k)| k).collect();
                    client.unlink::<(), _>(keys)
                });
                futures_util::future::try_join_all(unlinks).await?;
            }
            Ok(())
        }))
    }

    fn get_many<'a>(
        &'a self,
        keys: &'a [&'a str],
        decoder: &'a dyn Decoder,
    ) -> BoxFuture<'a, Result<Vec<Option<Entry>>, Error>> {
        let redis_keys: Vec<String> = keys.iter().map(|key| self.redis_key(key)).collect();
        let groups = slot_groups(&redis_keys, |k| k.as_bytes(), self.clustered());
        let count = keys.len();
        let read = self.run(2, move |client| async move {
            let reads = groups.into_iter().map(|group| {
                let client = &client;
                async move {
                    let (indexes, keys): (Vec<usize>, Vec<String>) = group.into_iter().unzip();
                    let values: Vec<Option<Bytes>> = client.mget(keys).await?;
                    Ok::<_, fred::error::Error>(indexes.into_iter().zip(values))
                }
            });
            let mut out: Vec<Option<Bytes>> = vec![None; count];
            for group in futures_util::future::try_join_all(reads).await? {
                for (index, value) in group {
                    out[index] = value;
                }
            }
            Ok(out)
        });
        Box::pin(async move {
            read.await?
                .into_iter()
                .map(|bytes| bytes.map(|b| self.decode(&b, decoder)).transpose())
                .collect()
        })
    }

    fn set_many<'a>(
        &'a self,
        entries: Vec<(&'a str, Entry)>,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        if self.dedupe_writes {
            // Dedupe compares per key; keep the one-by-one default.
            return Box::pin(async move {
                for (key, entry) in entries {
                    self.set(key, entry, ttl).await?;
                }
                Ok(())
            });
        }
        let encoded = entries
            .iter()
            .map(|(key, entry)| Ok((self.redis_key(key), self.encode(entry)?)))
            .collect::<Result<Vec<_>, Error>>();
        Box::pin(async move {
            let encoded = encoded?;
            let expire = expiration(ttl);
            // Concurrent single SETs (fred pipelines them on the
            // connection), each with the store's fail-fast options.
            self.run(2, move |client| async move {
                let writes = encoded.into_iter().map(|(key, bytes)| {
                    client.set::<(), _, _>(key, bytes, expire.clone(), None, false)
                });
                futures_util::future::try_join_all(writes).await.map(drop)
            })
            .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_escape_matches_prefix_literally() {
        assert_eq!(glob_escape("a*b?[c]\\:"), "a\\*b\\?\\[c\\]\\\\:*");
    }

    #[test]
    fn millis_round_up_and_never_zero() {
        assert_eq!(millis(Duration::from_nanos(1)), 1);
        assert_eq!(millis(Duration::from_micros(1500)), 2);
        assert_eq!(millis(Duration::from_secs(3)), 3000);
        assert_eq!(millis(Duration::ZERO), 1);
    }
}
