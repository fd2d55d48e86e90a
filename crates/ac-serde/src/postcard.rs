//! postcard: compact and fast, not self-describing; for Rust-only stores.

use ac_core::{ErasedDeserializer, Error, Serializer};

/// postcard values. Not readable by the Python package.
#[derive(Debug, Clone, Copy, Default)]
pub struct Postcard;

impl Serializer for Postcard {
    fn name(&self) -> &str {
        "postcard"
    }

    fn dumps(&self, value: &dyn erased_serde::Serialize) -> Result<Vec<u8>, Error> {
        postcard::to_stdvec(value).map_err(|e| Error::serialization("postcard", e))
    }

    fn loads(
        &self,
        bytes: &[u8],
        visit: &mut dyn FnMut(ErasedDeserializer<'_, '_>) -> Result<(), erased_serde::Error>,
    ) -> Result<(), Error> {
        let mut de = postcard::Deserializer::from_bytes(bytes);
        crate::visit_with("postcard", &mut de, visit)?;
        match de.finalize() {
            Ok([]) => Ok(()),
            Ok(_) => Err(Error::serialization(
                "postcard",
                "trailing bytes after the value",
            )),
            Err(e) => Err(Error::serialization("postcard", e)),
        }
    }
}
