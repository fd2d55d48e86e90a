//! The [`Serializer`] trait: how byte stores turn values into bytes.

use std::any::{Any, TypeId};
use std::fmt;

use crate::Error;

/// A deserializer handed to [`Serializer::loads`]'s callback.
pub type ErasedDeserializer<'a, 'de> = &'a mut dyn erased_serde::Deserializer<'de>;

/// A format that turns cached values into bytes and back.
///
/// Only byte-oriented stores (Redis, files, S3, GCS) use a serializer; the
/// in-memory store keeps values as they are. The trait is object safe so a
/// store can hold `Arc<dyn Serializer>` chosen at run time, while the cached
/// function, which knows the value's type, drives (de)serialization through
/// [`erased_serde`].
pub trait Serializer: Send + Sync + fmt::Debug + 'static {
    /// A short name for errors and logs, e.g. `"json"`.
    fn name(&self) -> &str;

    /// Encodes `value`.
    fn dumps(&self, value: &dyn erased_serde::Serialize) -> Result<Vec<u8>, Error>;

    /// Decodes `bytes`: build a deserializer over them and hand it to `visit`,
    /// which deserializes the caller's type from it.
    fn loads(
        &self,
        bytes: &[u8],
        visit: &mut dyn FnMut(ErasedDeserializer<'_, '_>) -> Result<(), erased_serde::Error>,
    ) -> Result<(), Error>;

    /// For formats bound to one concrete type (a protobuf message): encode
    /// `value` without serde. `None`, the default, means "use
    /// [`Serializer::dumps`]".
    fn dumps_any(&self, value: &dyn Any) -> Option<Result<Vec<u8>, Error>> {
        let _ = value;
        None
    }

    /// For formats bound to one concrete type: decode a value of the type
    /// `type_id`. `None`, the default, means "use [`Serializer::loads`]".
    fn loads_any(
        &self,
        bytes: &[u8],
        type_id: TypeId,
    ) -> Option<Result<Box<dyn Any + Send>, Error>> {
        let _ = (bytes, type_id);
        None
    }
}
