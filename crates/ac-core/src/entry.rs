//! Cached values and the entries that hold them.

use std::any::{Any, type_name};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Serializer};

/// A value a byte store (Redis, files, object stores, a [`ChainCache`](crate::ChainCache),
/// an `Arc<dyn Store>`) can keep: `Clone + Send + Sync + 'static` and
/// (de)serializable with serde.
///
/// Implemented for every such type. In-process stores need none of it: a
/// value cached in an `InMemCache` only needs `Clone + Send + Sync +
/// 'static` (see [`StoreFor`](crate::StoreFor)).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be kept in a byte store: it must implement `serde::Serialize` and `serde::de::DeserializeOwned`",
    label = "not (de)serializable",
    note = "byte stores (Redis, files, object stores, ChainCache, `Arc<dyn Store>`) keep values serialized; an in-process `InMemCache` needs only `Clone + Send + Sync + 'static`"
)]
pub trait SerdeValue: Clone + Send + Sync + 'static {
    /// Encodes the value with `serializer`.
    fn encode(&self, serializer: &dyn Serializer) -> Result<Vec<u8>, Error>;

    /// Decodes a value previously produced by [`SerdeValue::encode`].
    fn decode(bytes: &[u8], serializer: &dyn Serializer) -> Result<Self, Error>;
}

impl<T> SerdeValue for T
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    fn encode(&self, serializer: &dyn Serializer) -> Result<Vec<u8>, Error> {
        serializer
            .dumps_any(self)
            .unwrap_or_else(|| serializer.dumps(self))
    }

    fn decode(bytes: &[u8], serializer: &dyn Serializer) -> Result<Self, Error> {
        if let Some(decoded) = serializer.loads_any(bytes, std::any::TypeId::of::<T>()) {
            return decoded?.downcast::<T>().map(|value| *value).map_err(|_| {
                Error::serialization(
                    serializer.name(),
                    format!("decoded a value of another type than {}", type_name::<T>()),
                )
            });
        }
        let mut out = None;
        serializer.loads(bytes, &mut |de| {
            out = Some(erased_serde::deserialize::<T>(de)?);
            Ok(())
        })?;
        out.ok_or_else(|| {
            Error::serialization(
                serializer.name(),
                format!("serializer produced no {}", type_name::<T>()),
            )
        })
    }
}

/// How a value held by a [`Value`] is encoded, if it can be.
type EncodeFn<T> = fn(&T, &dyn Serializer) -> Result<Vec<u8>, Error>;

/// The one heap object behind a [`Value`]: the value and, for values a byte
/// store may receive, how to encode it.
struct Held<T> {
    encode: Option<EncodeFn<T>>,
    value: T,
}

/// The type-erased view of a [`Held`] value.
trait AnyValue: Any + Send + Sync {
    fn type_name(&self) -> &'static str;
    fn encode(&self, serializer: &dyn Serializer) -> Result<Vec<u8>, Error>;
    fn shallow_size(&self) -> usize;
}

impl<T: Clone + Send + Sync + 'static> AnyValue for Held<T> {
    fn type_name(&self) -> &'static str {
        type_name::<T>()
    }
    fn encode(&self, serializer: &dyn Serializer) -> Result<Vec<u8>, Error> {
        match self.encode {
            Some(encode) => encode(&self.value, serializer),
            None => Err(Error::Unsupported(format!(
                "encoding a {}: it was cached for in-process stores only (it is not SerdeValue)",
                type_name::<T>()
            ))),
        }
    }
    fn shallow_size(&self) -> usize {
        size_of::<T>()
    }
}

/// A cached value of any type, shared by reference count.
///
/// Cloning a `Value` is one atomic increment; it never clones the value.
#[derive(Clone)]
pub struct Value(Arc<dyn AnyValue>);

impl Value {
    /// Wraps a value that byte stores can encode.
    pub fn new<T: SerdeValue>(value: T) -> Self {
        Self(Arc::new(Held {
            encode: Some(<T as SerdeValue>::encode),
            value,
        }))
    }

    /// Wraps a value for in-process stores only: it needs no serde, and
    /// [`Value::encode`] refuses it.
    pub fn in_process<T: Clone + Send + Sync + 'static>(value: T) -> Self {
        Self(Arc::new(Held {
            encode: None,
            value,
        }))
    }

    /// The value, if it is a `T`.
    #[inline]
    pub fn downcast_ref<T: 'static>(&self) -> Option<&T> {
        // Upcasting to `dyn Any` adjusts the vtable pointer; no call.
        let any: &dyn Any = &*self.0;
        any.downcast_ref::<Held<T>>().map(|held| &held.value)
    }

    /// The name of the value's type (for errors).
    pub fn type_name(&self) -> &'static str {
        self.0.type_name()
    }

    /// Encodes the value for a byte store.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for a value made with [`Value::in_process`];
    /// what the serializer reports otherwise.
    pub fn encode(&self, serializer: &dyn Serializer) -> Result<Vec<u8>, Error> {
        self.0.encode(serializer)
    }

    /// `size_of` the value's type: its inline size, not what it owns on the heap.
    pub fn shallow_size(&self) -> usize {
        self.0.shallow_size()
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Value").field(&self.type_name()).finish()
    }
}

/// Decodes bytes into a [`Value`] of the type a cached function expects.
///
/// Byte stores receive one in [`Store::get`](crate::Store::get); in-memory
/// stores ignore it.
pub trait Decoder: Send + Sync {
    /// Decodes `bytes` with `serializer`.
    fn decode(&self, bytes: &[u8], serializer: &dyn Serializer) -> Result<Value, Error>;
    /// The name of the type produced.
    fn type_name(&self) -> &'static str;
}

/// The [`Decoder`] of a `T`.
pub struct TypedDecoder<T>(PhantomData<fn() -> T>);

impl<T> TypedDecoder<T> {
    /// The decoder of `T`.
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

impl<T> Default for TypedDecoder<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for TypedDecoder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TypedDecoder<{}>", type_name::<T>())
    }
}

impl<T: SerdeValue> Decoder for TypedDecoder<T> {
    fn decode(&self, bytes: &[u8], serializer: &dyn Serializer) -> Result<Value, Error> {
        T::decode(bytes, serializer).map(Value::new)
    }
    fn type_name(&self) -> &'static str {
        type_name::<T>()
    }
}

/// A cached value with its timestamps, as in the Python package:
/// `value`, `fresh_until` and `created_at`, both Unix seconds.
///
/// `fresh_until` is `f64::INFINITY` for an entry that never goes stale.
pub struct Entry {
    /// The cached value.
    pub value: Value,
    /// Until when (exclusive) the entry is fresh.
    pub fresh_until: f64,
    /// When the value was produced.
    pub created_at: f64,
    /// Earliest time this process may try another stale refresh of this
    /// entry (f64 bits). Process-local; not part of the wire format.
    next_refresh: AtomicU64,
}

impl Entry {
    /// An entry for `value` created at `created_at` and fresh until `fresh_until`.
    pub fn new(value: Value, fresh_until: f64, created_at: f64) -> Self {
        Self {
            value,
            fresh_until,
            created_at,
            next_refresh: AtomicU64::new(0),
        }
    }

    /// Whether the entry is fresh at `now`.
    #[inline]
    pub fn is_fresh(&self, now: f64) -> bool {
        now < self.fresh_until
    }

    /// Claims the right to start a stale refresh at `now`, blocking further
    /// claims on this entry until `now + hold`. Returns `false` if another
    /// caller claimed it and the hold has not passed.
    ///
    /// This is the in-process half of the refresh guard: it keeps a stale
    /// hit to one atomic load once a refresh is under way.
    #[inline]
    pub fn claim_refresh(&self, now: f64, hold: f64) -> bool {
        let current = self.next_refresh.load(Ordering::Relaxed);
        if now < f64::from_bits(current) {
            return false;
        }
        self.next_refresh
            .compare_exchange(
                current,
                (now + hold).to_bits(),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
    }
}

impl Entry {
    /// Sets when the next stale refresh of this entry may be claimed (`0`:
    /// at once): a refresh that ended without replacing the entry hands the
    /// claim back this way.
    #[inline]
    pub fn defer_refresh(&self, until: f64) {
        self.next_refresh.store(until.to_bits(), Ordering::Release);
    }
}

impl Clone for Entry {
    /// Clones value and timestamps; the refresh claim starts afresh.
    fn clone(&self) -> Self {
        Self::new(self.value.clone(), self.fresh_until, self.created_at)
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("value", &self.value)
            .field("fresh_until", &self.fresh_until)
            .field("created_at", &self.created_at)
            .finish()
    }
}
