//! Types and checks the fuzz targets share: representative cached values
//! (strings, numbers, options, vectors, maps, enums, nesting) and a protobuf
//! message, so that decoding from fuzzed bytes reaches real decoding paths.

use std::collections::BTreeMap;

use ac_core::{SerdeValue, Serializer};
use arbitrary::Arbitrary;
use serde::{Deserialize, Serialize};

/// A cached record with a bit of every serde shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Arbitrary)]
pub struct Record {
    pub id: u64,
    pub delta: i32,
    pub score: f64,
    pub ratio: f32,
    pub active: bool,
    pub initial: char,
    pub name: String,
    pub tags: Vec<String>,
    pub nickname: Option<String>,
    pub counts: BTreeMap<String, i64>,
    pub names_by_id: BTreeMap<u32, String>,
    pub blob: Vec<u8>,
    pub kind: Kind,
    pub children: Vec<Leaf>,
    pub pair: (u8, String),
    pub small: i8,
    pub wide: u16,
}

/// An enum with every variant form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Arbitrary)]
pub enum Kind {
    Unit,
    Newtype(u16),
    Tuple(i8, String),
    Struct {
        limit: Option<u64>,
        flags: Vec<bool>,
    },
}

/// A nested struct.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Arbitrary)]
pub struct Leaf {
    pub key: String,
    pub weight: Option<f64>,
    pub levels: Vec<i64>,
}

/// A protobuf message with scalars, repeated fields, a map, a nested
/// message, an enum and a oneof.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct Profile {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(double, tag = "3")]
    pub score: f64,
    #[prost(bool, tag = "4")]
    pub active: bool,
    #[prost(string, repeated, tag = "5")]
    pub tags: Vec<String>,
    #[prost(btree_map = "string, int64", tag = "6")]
    pub counts: BTreeMap<String, i64>,
    #[prost(message, optional, tag = "7")]
    pub address: Option<Address>,
    #[prost(bytes = "vec", tag = "8")]
    pub blob: Vec<u8>,
    #[prost(sint32, tag = "9")]
    pub delta: i32,
    #[prost(enumeration = "Tier", tag = "10")]
    pub tier: i32,
    #[prost(oneof = "Contact", tags = "11, 12")]
    pub contact: Option<Contact>,
    #[prost(message, repeated, tag = "13")]
    pub previous: Vec<Address>,
    #[prost(fixed32, repeated, tag = "14")]
    pub codes: Vec<u32>,
    #[prost(float, optional, tag = "15")]
    pub ratio: Option<f32>,
}

/// A nested protobuf message.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct Address {
    #[prost(string, tag = "1")]
    pub city: String,
    #[prost(uint32, tag = "2")]
    pub zip: u32,
    #[prost(message, optional, boxed, tag = "3")]
    pub parent: Option<Box<Address>>,
}

/// A protobuf enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration, Serialize, Deserialize)]
#[repr(i32)]
pub enum Tier {
    Free = 0,
    Pro = 1,
}

/// A protobuf oneof.
#[derive(Clone, PartialEq, prost::Oneof, Serialize, Deserialize)]
pub enum Contact {
    #[prost(string, tag = "11")]
    Email(String),
    #[prost(int64, tag = "12")]
    Phone(i64),
}

/// Decodes `bytes` as `T` with `serializer`; if that works, the value must
/// survive encode + decode unchanged. Equality is checked on the encoded
/// bytes (a fixpoint), so NaN and map order cannot cause false alarms.
/// Returns whether `bytes` decoded.
pub fn decode_and_reencode<T: SerdeValue>(bytes: &[u8], serializer: &dyn Serializer) -> bool {
    let Ok(value) = T::decode(bytes, serializer) else {
        return false;
    };
    let encoded = value
        .encode(serializer)
        .unwrap_or_else(|e| panic!("decoded value does not encode again: {e}"));
    let again = T::decode(&encoded, serializer)
        .unwrap_or_else(|e| panic!("re-encoded value does not decode: {e}; bytes {encoded:?}"));
    let encoded_again = again.encode(serializer).expect("encodes");
    assert_eq!(encoded, encoded_again, "encode/decode is not a fixpoint");
    true
}
