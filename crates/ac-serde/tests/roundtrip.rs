//! Every serializer and the entry codec round-trip; every decoder survives
//! random bytes without panicking.
#![cfg(all(
    feature = "json",
    feature = "msgpack",
    feature = "postcard",
    feature = "protobuf",
    feature = "gzip"
))]

use std::collections::BTreeMap;

use ac_core::{Entry, SerdeValue, Serializer, TypedDecoder, Value};
use ac_serde::codec::{Compression, decode_entry, decode_header, encode_entry};
use ac_serde::{Json, MsgPack, Postcard, protobuf};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u64,
    customer: String,
    lines: Vec<(String, u32)>,
    note: Option<String>,
    total: f64,
    tags: BTreeMap<String, bool>,
}

fn order() -> impl Strategy<Value = Order> {
    (
        any::<u64>(),
        "\\PC{0,20}",
        prop::collection::vec(("[a-z]{1,8}", any::<u32>()), 0..5),
        prop::option::of("\\PC{0,10}"),
        -1e12f64..1e12,
        prop::collection::btree_map("[a-z]{1,5}", any::<bool>(), 0..4),
    )
        .prop_map(|(id, customer, lines, note, total, tags)| Order {
            id,
            customer,
            lines,
            note,
            total,
            tags,
        })
}

/// A prost message that also derives serde, as prost-build can generate.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
struct UserProto {
    #[prost(uint64, tag = "1")]
    id: u64,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(string, repeated, tag = "3")]
    roles: Vec<String>,
}

fn serde_formats() -> Vec<Box<dyn Serializer>> {
    vec![Box::new(Json), Box::new(MsgPack), Box::new(Postcard)]
}

const COMPRESSIONS: [Compression; 3] = [
    Compression::None,
    Compression::GZIP,
    Compression::Gzip { level: 0 },
];

proptest! {
    #[test]
    fn serde_values_round_trip_through_every_format(value in order()) {
        for format in serde_formats() {
            let bytes = value.encode(&*format).unwrap();
            prop_assert_eq!(Order::decode(&bytes, &*format).unwrap(), value.clone(), "{}", format.name());
        }
    }

    #[test]
    fn options_and_unit_round_trip(value in prop::option::of(any::<i64>())) {
        for format in serde_formats() {
            let bytes = value.encode(&*format).unwrap();
            prop_assert_eq!(Option::<i64>::decode(&bytes, &*format).unwrap(), value);
            let unit = ().encode(&*format).unwrap();
            prop_assert!(<()>::decode(&unit, &*format).is_ok());
        }
    }

    #[test]
    fn protobuf_messages_round_trip(id in any::<u64>(), name in "\\PC{0,20}", roles in prop::collection::vec("[a-z]{1,6}", 0..4)) {
        let user = UserProto { id, name, roles };
        let format = protobuf::<UserProto>();
        let bytes = user.encode(&format).unwrap();
        prop_assert_eq!(bytes.clone(), prost::Message::encode_to_vec(&user), "plain protobuf bytes");
        prop_assert_eq!(UserProto::decode(&bytes, &format).unwrap(), user);
    }

    #[test]
    fn entries_round_trip_with_every_format_and_framing(
        value in order(),
        fresh_until in prop_oneof![Just(f64::INFINITY), 0f64..4e9],
        created_at in 0f64..4e9,
    ) {
        let entry = Entry::new(Value::new(value.clone()), fresh_until, created_at);
        for format in serde_formats() {
            for compression in COMPRESSIONS {
                let bytes = encode_entry(&entry, &*format, compression).unwrap();
                let back = decode_entry(&bytes, &*format, &TypedDecoder::<Order>::new(), compression).unwrap();
                prop_assert_eq!(back.value.downcast_ref::<Order>(), Some(&value));
                prop_assert_eq!(back.fresh_until.to_bits(), fresh_until.to_bits());
                prop_assert_eq!(back.created_at.to_bits(), created_at.to_bits());
                prop_assert_eq!(decode_header(&bytes, compression).unwrap(), (fresh_until, created_at));
            }
        }
    }

    #[test]
    fn random_bytes_never_panic_a_decoder(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut framed = vec![0x1f, 0x8b];
        framed.extend_from_slice(&bytes);
        for format in serde_formats() {
            for compression in COMPRESSIONS {
                for input in [&bytes, &framed] {
                    let _ = decode_entry(input, &*format, &TypedDecoder::<Order>::new(), compression);
                    let _ = decode_entry(input, &*format, &TypedDecoder::<String>::new(), compression);
                    let _ = decode_header(input, compression);
                    let _ = Order::decode(input, &*format);
                }
            }
        }
        let _ = UserProto::decode(&bytes, &protobuf::<UserProto>());
    }
}

#[test]
fn the_header_is_the_python_pack_entry_layout() {
    let entry = Entry::new(Value::new(String::from("x")), f64::INFINITY, 1.5);
    let bytes = encode_entry(&entry, &Json, Compression::None).unwrap();
    assert_eq!(&bytes[..8], &f64::INFINITY.to_be_bytes());
    assert_eq!(&bytes[8..16], &1.5f64.to_be_bytes());
    assert_eq!(&bytes[16..], b"\"x\"");
}

#[test]
fn bad_input_is_a_named_error() {
    let decoder = TypedDecoder::<Order>::new();
    let short = decode_entry(&[1, 2, 3], &Json, &decoder, Compression::None).unwrap_err();
    assert!(
        short
            .to_string()
            .contains("truncated entry header: 3 of 16"),
        "{short}"
    );
    let raw =
        decode_entry(b"plain bytes, not gzip", &Json, &decoder, Compression::GZIP).unwrap_err();
    assert!(raw.to_string().contains("not a gzip-framed entry"), "{raw}");
    let nan = [f64::NAN.to_be_bytes(), 1f64.to_be_bytes()].concat();
    let err = decode_entry(&nan, &Json, &decoder, Compression::None).unwrap_err();
    assert!(err.to_string().contains("impossible times"), "{err}");

    // The right framing and header, another serializer's payload.
    let entry = Entry::new(Value::new(7u32), 10.0, 1.0);
    let msgpack = encode_entry(&entry, &MsgPack, Compression::None).unwrap();
    let as_json = decode_entry(
        &msgpack,
        &Json,
        &TypedDecoder::<u32>::new(),
        Compression::None,
    );
    assert!(as_json.unwrap_err().to_string().contains("json serializer"));
    // The right format, another type.
    let json = encode_entry(&entry, &Json, Compression::None).unwrap();
    assert!(
        decode_entry(
            &json,
            &Json,
            &TypedDecoder::<String>::new(),
            Compression::None
        )
        .is_err()
    );
    // A protobuf store handed another type.
    let proto = protobuf::<UserProto>();
    let err = 5u8.encode(&proto).unwrap_err().to_string();
    assert!(
        err.contains("for roundtrip::UserProto, not another type"),
        "{err}"
    );
}

#[test]
fn a_gzip_level_above_nine_is_refused() {
    assert!(Compression::gzip(9).is_ok());
    let err = Compression::gzip(10).unwrap_err().to_string();
    assert!(err.contains("gzip level must be 0 to 9, got 10"), "{err}");
}

/// The `source` of `error`, downcast to `T`.
fn source_as<T: std::error::Error + 'static>(error: &ac_core::Error) -> Option<&T> {
    std::error::Error::source(error).and_then(|source| source.downcast_ref::<T>())
}

#[test]
fn decode_errors_keep_the_format_error_as_source_and_are_not_transient() {
    let entry = Entry::new(Value::new(String::from("text")), 10.0, 1.0);
    let as_u32 = TypedDecoder::<u32>::new();
    // The right framing and header, a payload of another type.
    let json = encode_entry(&entry, &Json, Compression::None).unwrap();
    let error = decode_entry(&json, &Json, &as_u32, Compression::None).unwrap_err();
    assert!(
        source_as::<serde_json::Error>(&error).is_some(),
        "{error:?}"
    );
    assert!(!error.is_transient(), "{error}");
    // Bytes that are not JSON at all (the error of `visit`, then of `end`).
    let garbage = [&json[..16], b"{not json"].concat();
    let error = decode_entry(&garbage, &Json, &as_u32, Compression::None).unwrap_err();
    assert!(
        source_as::<serde_json::Error>(&error).is_some(),
        "{error:?}"
    );
    let trailing = [&json[..], b" 5"].concat();
    let error = decode_entry(
        &trailing,
        &Json,
        &TypedDecoder::<String>::new(),
        Compression::None,
    )
    .unwrap_err();
    assert!(
        source_as::<serde_json::Error>(&error).is_some(),
        "{error:?}"
    );

    let msgpack = encode_entry(&entry, &MsgPack, Compression::None).unwrap();
    let error = decode_entry(&msgpack, &MsgPack, &as_u32, Compression::None).unwrap_err();
    assert!(
        source_as::<rmp_serde::decode::Error>(&error).is_some(),
        "{error:?}"
    );
    let postcard = encode_entry(&entry, &Postcard, Compression::None).unwrap();
    let error = decode_entry(
        &postcard[..postcard.len() - 1],
        &Postcard,
        &TypedDecoder::<String>::new(),
        Compression::None,
    )
    .unwrap_err();
    assert!(source_as::<postcard::Error>(&error).is_some(), "{error:?}");
    assert!(!error.is_transient(), "{error}");

    // Bad gzip framing: corrupt, with gzip's I/O error as the source.
    let gzip = encode_entry(&entry, &Json, Compression::GZIP).unwrap();
    let mut broken = gzip.clone();
    let middle = broken.len() / 2;
    broken.truncate(middle);
    let error = decode_entry(&broken, &Json, &as_u32, Compression::GZIP).unwrap_err();
    assert!(matches!(error, ac_core::Error::Corrupt { .. }), "{error:?}");
    assert!(source_as::<std::io::Error>(&error).is_some(), "{error:?}");
    assert!(!error.is_transient(), "{error}");
}
