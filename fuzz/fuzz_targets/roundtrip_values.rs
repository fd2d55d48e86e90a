//! Structured values (built with `arbitrary`) through every serde
//! serializer and the entry codec, plain and gzip: what a store writes it
//! must read back equal, with the same header.
//!
//! JSON cannot carry NaN or ±infinity (serde_json writes `null`, as the
//! Python package's orjson does), so those are compared only through the
//! binary formats.
#![no_main]

use ac_core::{Entry, Serializer, TypedDecoder, Value};
use ac_fuzz::{Leaf, Record};
use ac_serde::codec::{Compression, decode_entry, encode_entry};
use ac_serde::{Json, MsgPack, Postcard};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (Record, f64, f64, u8)| {
    let (record, fresh_until, created_at, format) = input;
    let finite = has_only_finite_floats(&record);
    // One format and framing per input: deflate is the slow part.
    let (serializer, exact): (&dyn Serializer, bool) = match format % 3 {
        0 => (&Json, finite),
        1 => (&MsgPack, true),
        _ => (&Postcard, true),
    };
    let compression = if format & 0x80 != 0 {
        Compression::GZIP
    } else {
        Compression::None
    };
    let entry = Entry::new(Value::new(record.clone()), fresh_until, created_at);
    let bytes = encode_entry(&entry, serializer, compression)
        .unwrap_or_else(|e| panic!("{} cannot encode {record:?}: {e}", serializer.name()));
    let decoded = decode_entry(
        &bytes,
        serializer,
        &TypedDecoder::<Record>::new(),
        compression,
    );
    let header_ok =
        !fresh_until.is_nan() && fresh_until != f64::NEG_INFINITY && created_at.is_finite();
    let decoded = match decoded {
        Ok(decoded) => decoded,
        Err(_) if !header_ok || !exact => return,
        Err(e) => panic!("{} cannot read back {record:?}: {e}", serializer.name()),
    };
    assert!(
        header_ok,
        "impossible header accepted: {fresh_until} {created_at}"
    );
    assert_eq!(decoded.fresh_until.to_bits(), fresh_until.to_bits());
    assert_eq!(decoded.created_at.to_bits(), created_at.to_bits());
    let value = decoded.value.downcast_ref::<Record>().expect("a Record");
    if exact {
        assert!(
            same(value, &record),
            "{} changed the value:\n{record:?}\n{value:?}",
            serializer.name()
        );
    }
});

fn has_only_finite_floats(record: &Record) -> bool {
    record.score.is_finite()
        && record.ratio.is_finite()
        && record
            .children
            .iter()
            .all(|leaf: &Leaf| leaf.weight.is_none_or(f64::is_finite))
}

/// Equality with NaN equal to NaN (bitwise for floats).
fn same(a: &Record, b: &Record) -> bool {
    let floats = |r: &Record| {
        let mut bits = vec![r.score.to_bits(), u64::from(r.ratio.to_bits())];
        bits.extend(
            r.children
                .iter()
                .map(|l| l.weight.map(f64::to_bits).unwrap_or(1)),
        );
        bits
    };
    let strip = |r: &Record| {
        let mut r = r.clone();
        r.score = 0.0;
        r.ratio = 0.0;
        for leaf in &mut r.children {
            leaf.weight = leaf.weight.map(|_| 0.0);
        }
        r
    };
    floats(a) == floats(b) && strip(a) == strip(b)
}
