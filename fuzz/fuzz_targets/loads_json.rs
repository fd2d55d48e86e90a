//! `Json::loads` from arbitrary bytes, into a struct with every serde shape,
//! `serde_json::Value` and a few plain types; whatever decodes must
//! re-encode to a fixpoint. Use with `dict/json.dict`.
#![no_main]

use std::collections::BTreeMap;

use ac_fuzz::{Kind, Record, decode_and_reencode};
use ac_serde::Json;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let json = Json;
    decode_and_reencode::<Record>(bytes, &json);
    decode_and_reencode::<serde_json::Value>(bytes, &json);
    decode_and_reencode::<Vec<Kind>>(bytes, &json);
    decode_and_reencode::<BTreeMap<String, Option<Vec<f64>>>>(bytes, &json);
    decode_and_reencode::<String>(bytes, &json);
    decode_and_reencode::<(u64, i64, bool)>(bytes, &json);
});
