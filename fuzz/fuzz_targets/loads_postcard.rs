//! `Postcard::loads` from arbitrary bytes, into a struct with every serde
//! shape and a few plain types (postcard is not self-describing, so
//! `serde_json::Value` must fail cleanly); whatever decodes must re-encode
//! to a fixpoint.
#![no_main]

use std::collections::BTreeMap;

use ac_fuzz::{Kind, Record, decode_and_reencode};
use ac_serde::Postcard;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let postcard = Postcard;
    decode_and_reencode::<Record>(bytes, &postcard);
    assert!(!decode_and_reencode::<serde_json::Value>(bytes, &postcard));
    decode_and_reencode::<Vec<Kind>>(bytes, &postcard);
    decode_and_reencode::<BTreeMap<String, Option<Vec<f64>>>>(bytes, &postcard);
    decode_and_reencode::<String>(bytes, &postcard);
    decode_and_reencode::<(u64, i64, bool)>(bytes, &postcard);
});
