//! Writing your own serializer.
//!
//! A custom format implements [`ac_core::Serializer`]: a name, `dumps`
//! from a type-erased serde value, and `loads` that hands a type-erased
//! deserializer to the caller, which knows the type. Any serde format fits;
//! this one writes pretty-printed JSON:
//!
//! ```
//! use ac_core::{ErasedDeserializer, Error, Serializer};
//!
//! #[derive(Debug)]
//! struct PrettyJson;
//!
//! impl Serializer for PrettyJson {
//!     fn name(&self) -> &str {
//!         "pretty-json"
//!     }
//!     fn dumps(&self, value: &dyn erased_serde::Serialize) -> Result<Vec<u8>, Error> {
//!         serde_json::to_vec_pretty(value).map_err(|e| Error::serialization("pretty-json", e))
//!     }
//!     fn loads(
//!         &self,
//!         bytes: &[u8],
//!         visit: &mut dyn FnMut(ErasedDeserializer<'_, '_>) -> Result<(), erased_serde::Error>,
//!     ) -> Result<(), Error> {
//!         let mut de = serde_json::Deserializer::from_slice(bytes);
//!         let mut erased = <dyn erased_serde::Deserializer<'_>>::erase(&mut de);
//!         visit(&mut erased).map_err(|e| Error::serialization("pretty-json", e))
//!     }
//! }
//!
//! use ac_core::SerdeValue;
//! let bytes = vec![1u8, 2].encode(&PrettyJson)?;
//! assert_eq!(Vec::<u8>::decode(&bytes, &PrettyJson)?, vec![1, 2]);
//! # Ok::<(), Error>(())
//! ```
