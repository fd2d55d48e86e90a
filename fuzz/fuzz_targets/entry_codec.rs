//! The entry codec (`fresh_until f64 BE | created_at f64 BE | payload`,
//! plain or gzip-framed), as the file store and Redis read it.
//!
//! The first byte picks the serializer, the value type and the framing; the
//! rest is the stored bytes. Checked for plain bytes, for those bytes as a
//! gzip stream, or for those bytes gzipped here (so the fuzzer reaches the
//! inner format through gzip too, which it cannot by mutating a CRC-checked
//! stream); one gzip path per input, as deflate is the slow part:
//! - decoding never panics, and the gzip framing of the bytes decodes
//!   exactly as the plain bytes;
//! - `decode_header` agrees with `decode_entry`;
//! - a decoded entry re-encodes (plain and gzip) to bytes that decode to
//!   the same header and re-encode to the same bytes.
#![no_main]

use std::io::Write as _;

use ac_core::{CacheValue, Entry, Error, Serializer, TypedDecoder};
use ac_fuzz::Record;
use ac_serde::codec::{Compression, decode_entry, decode_header, encode_entry};
use ac_serde::{Json, MsgPack, Postcard};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&mode, bytes)) = input.split_first() else {
        return;
    };
    let serializer: &dyn Serializer = match mode % 3 {
        0 => &Json,
        1 => &MsgPack,
        _ => &Postcard,
    };
    let gzip_here = mode & 0x80 != 0;
    match (mode & 0x7f) / 3 % 3 {
        0 => check::<Record>(bytes, serializer, gzip_here),
        1 => check::<serde_json::Value>(bytes, serializer, gzip_here),
        _ => check::<String>(bytes, serializer, gzip_here),
    }
});

fn check<T: CacheValue>(bytes: &[u8], serializer: &dyn Serializer, gzip_here: bool) {
    let decoder = TypedDecoder::<T>::new();
    let plain = decode_entry(bytes, serializer, &decoder, Compression::None);
    agrees_with_header(&plain, decode_header(bytes, Compression::None));

    if !gzip_here {
        // The bytes themselves as a gzip stream: must fail or decode cleanly.
        let as_gzip = decode_entry(bytes, serializer, &decoder, Compression::GZIP);
        agrees_with_header(&as_gzip, decode_header(bytes, Compression::GZIP));
        if let Ok(entry) = &as_gzip {
            reencodes::<T>(entry, serializer, Compression::GZIP);
        }
        if let Ok(entry) = &plain {
            reencodes::<T>(entry, serializer, Compression::None);
        }
        return;
    }

    // The bytes gzipped: the same outcome as plain.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).expect("in-memory gzip");
    let gzipped = gz.finish().expect("in-memory gzip");
    let through_gzip = decode_entry(&gzipped, serializer, &decoder, Compression::GZIP);
    agrees_with_header(&through_gzip, decode_header(&gzipped, Compression::GZIP));
    match (&plain, &through_gzip) {
        (Ok(a), Ok(b)) => {
            assert_eq!(header_bits(a), header_bits(b));
            assert_eq!(
                value_bytes::<T>(a, serializer),
                value_bytes::<T>(b, serializer)
            );
            reencodes::<T>(b, serializer, Compression::GZIP);
        }
        (Err(_), Err(_)) => {}
        (a, b) => panic!("plain and gzip decode differently: {a:?} vs {b:?}"),
    }
}

/// `decode_header` fails exactly when the entry's header is bad, and
/// reads the same times as `decode_entry`.
fn agrees_with_header(entry: &Result<Entry, Error>, header: Result<(f64, f64), Error>) {
    match (entry, header) {
        (Ok(entry), Ok((fresh_until, created_at))) => {
            assert_eq!(
                header_bits(entry),
                (fresh_until.to_bits(), created_at.to_bits())
            );
        }
        (Ok(entry), Err(e)) => panic!("entry {entry:?} decodes but its header does not: {e}"),
        (Err(_), _) => {}
    }
}

fn reencodes<T: CacheValue>(entry: &Entry, serializer: &dyn Serializer, compression: Compression) {
    let bytes = encode_entry(entry, serializer, compression)
        .unwrap_or_else(|e| panic!("decoded entry does not encode: {e}"));
    let again = decode_entry(&bytes, serializer, &TypedDecoder::<T>::new(), compression)
        .unwrap_or_else(|e| panic!("re-encoded entry does not decode: {e}"));
    assert_eq!(header_bits(entry), header_bits(&again));
    let bytes_again = encode_entry(&again, serializer, compression).expect("encodes");
    assert_eq!(bytes, bytes_again, "entry encoding is not a fixpoint");
}

fn header_bits(entry: &Entry) -> (u64, u64) {
    (entry.fresh_until.to_bits(), entry.created_at.to_bits())
}

fn value_bytes<T: CacheValue>(entry: &Entry, serializer: &dyn Serializer) -> Vec<u8> {
    let value = entry.value.downcast_ref::<T>().expect("decoded as T");
    value.encode(serializer).expect("decoded value encodes")
}
