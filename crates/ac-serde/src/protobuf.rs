//! Protocol Buffers messages with prost, for one message type per store.

use std::any::{Any, TypeId, type_name};
use std::fmt;
use std::marker::PhantomData;

use ac_core::{ErasedDeserializer, Error, Serializer};

/// The serializer of the prost message `M` (the Python package's
/// `serializers.protobuf(MyMessage)`): the payload is `M`'s protobuf bytes,
/// readable by any language's generated code.
///
/// A store with this serializer holds `M` values only; any other type is an
/// error, not a silent fallback. Cached values also need serde (for the
/// in-memory path), e.g. prost-build's
/// `type_attribute(".", "#[derive(serde::Serialize, serde::Deserialize)]")`.
pub struct Protobuf<M>(PhantomData<fn() -> M>);

/// The serializer of the prost message `M`.
pub fn protobuf<M: prost::Message + Default + 'static>() -> Protobuf<M> {
    Protobuf(PhantomData)
}

impl<M> fmt::Debug for Protobuf<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Protobuf<{}>", type_name::<M>())
    }
}

impl<M> Clone for Protobuf<M> {
    fn clone(&self) -> Self {
        Self(PhantomData)
    }
}

impl<M: prost::Message + Default + 'static> Protobuf<M> {
    fn wrong_type(&self, found: &str) -> Error {
        Error::serialization(
            "protobuf",
            format!(
                "this store's protobuf serializer is for {}, not {found}",
                type_name::<M>()
            ),
        )
    }
}

impl<M: prost::Message + Default + 'static> Serializer for Protobuf<M> {
    fn name(&self) -> &str {
        "protobuf"
    }

    fn dumps(&self, _value: &dyn erased_serde::Serialize) -> Result<Vec<u8>, Error> {
        Err(self.wrong_type("a serde value"))
    }

    fn loads(
        &self,
        _bytes: &[u8],
        _visit: &mut dyn FnMut(ErasedDeserializer<'_, '_>) -> Result<(), erased_serde::Error>,
    ) -> Result<(), Error> {
        Err(self.wrong_type("a serde value"))
    }

    fn dumps_any(&self, value: &dyn Any) -> Option<Result<Vec<u8>, Error>> {
        Some(match value.downcast_ref::<M>() {
            Some(message) => Ok(message.encode_to_vec()),
            None => Err(self.wrong_type("another type")),
        })
    }

    fn loads_any(
        &self,
        bytes: &[u8],
        type_id: TypeId,
    ) -> Option<Result<Box<dyn Any + Send>, Error>> {
        if type_id != TypeId::of::<M>() {
            return Some(Err(self.wrong_type("another type")));
        }
        Some(
            M::decode(bytes)
                .map(|message| Box::new(message) as Box<dyn Any + Send>)
                .map_err(|e| Error::serialization("protobuf", e)),
        )
    }
}
