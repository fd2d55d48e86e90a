//! JSON with serde_json: the default, and the format Python's
//! `serializers.json` (orjson) reads and writes.

use ac_core::{ErasedDeserializer, Error, Serializer};

/// JSON values (the Python package's `serializers.json`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl Serializer for Json {
    fn name(&self) -> &str {
        "json"
    }

    fn dumps(&self, value: &dyn erased_serde::Serialize) -> Result<Vec<u8>, Error> {
        serde_json::to_vec(value).map_err(|e| Error::serialization("json", e))
    }

    fn loads(
        &self,
        bytes: &[u8],
        visit: &mut dyn FnMut(ErasedDeserializer<'_, '_>) -> Result<(), erased_serde::Error>,
    ) -> Result<(), Error> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        crate::visit_with("json", &mut de, visit)?;
        de.end().map_err(|e| Error::serialization("json", e))
    }
}
