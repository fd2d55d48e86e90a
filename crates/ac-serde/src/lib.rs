//! Serializers and the entry codec of
//! [advanced-caching](https://docs.rs/advanced-caching)'s byte stores.
//!
//! - Formats, each behind its feature: [`Json`] (default), `MsgPack`
//!   (`msgpack`), `Postcard` (`postcard`), `Protobuf<M>` (`protobuf`). A
//!   custom format implements [`ac_core::Serializer`] (see [`custom`]).
//! - [`codec`]: the bytes every byte store writes, `fresh_until: f64 BE |
//!   created_at: f64 BE | payload`, the Python package's `pack_entry`, with
//!   optional gzip framing. Decoding never panics on foreign bytes.
#![forbid(unsafe_code)]

pub mod codec;
pub mod custom;
#[cfg(feature = "json")]
mod json;
#[cfg(feature = "msgpack")]
mod msgpack;
#[cfg(feature = "postcard")]
mod postcard;
#[cfg(feature = "protobuf")]
mod protobuf;

#[cfg(feature = "json")]
pub use json::Json;
#[cfg(feature = "msgpack")]
pub use msgpack::MsgPack;
#[cfg(feature = "postcard")]
pub use postcard::Postcard;
#[cfg(feature = "protobuf")]
pub use protobuf::{Protobuf, protobuf};

/// Runs `visit` over an erased `deserializer`, naming the format in errors.
///
/// The error is the format's own (`serde_json::Error`, ...), rebuilt from
/// the erased one, so that callers can downcast the
/// [`Error::Serialization`](ac_core::Error::Serialization) source to it.
#[cfg(any(feature = "json", feature = "msgpack", feature = "postcard"))]
fn visit_with<'de, D>(
    format: &str,
    deserializer: D,
    visit: &mut dyn FnMut(ac_core::ErasedDeserializer<'_, 'de>) -> Result<(), erased_serde::Error>,
) -> Result<(), ac_core::Error>
where
    D: serde::Deserializer<'de>,
    D::Error: Send + Sync + 'static,
{
    let mut erased = <dyn erased_serde::Deserializer<'de>>::erase(deserializer);
    visit(&mut erased).map_err(|e| {
        ac_core::Error::serialization(format, <D::Error as serde::de::Error>::custom(e))
    })
}
