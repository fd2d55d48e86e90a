//! MessagePack with rmp-serde, structs as maps with field names so that
//! Python's `msgpack.unpackb` sees dicts.

use ac_core::{ErasedDeserializer, Error, Serializer};

/// MessagePack values (the Python package's `serializers.msgpack`).
#[derive(Debug, Clone, Copy, Default)]
pub struct MsgPack;

impl Serializer for MsgPack {
    fn name(&self) -> &str {
        "msgpack"
    }

    fn dumps(&self, value: &dyn erased_serde::Serialize) -> Result<Vec<u8>, Error> {
        rmp_serde::to_vec_named(value).map_err(|e| Error::serialization("msgpack", e))
    }

    fn loads(
        &self,
        bytes: &[u8],
        visit: &mut dyn FnMut(ErasedDeserializer<'_, '_>) -> Result<(), erased_serde::Error>,
    ) -> Result<(), Error> {
        let mut cursor = std::io::Cursor::new(bytes);
        let mut de = rmp_serde::Deserializer::new(&mut cursor);
        crate::visit_with("msgpack", &mut de, visit)?;
        if cursor.position() == bytes.len() as u64 {
            Ok(())
        } else {
            Err(Error::serialization(
                "msgpack",
                "trailing bytes after the value",
            ))
        }
    }
}
