//! `Protobuf<M>::loads_any` (through `CacheValue::decode`) from arbitrary
//! bytes, for a message with scalars, repeated fields, a map, nested and
//! recursive messages, an enum and a oneof; whatever decodes must re-encode
//! to a fixpoint. Decoding as another type must be refused.
#![no_main]

use ac_core::CacheValue;
use ac_fuzz::{Address, Profile, decode_and_reencode};
use ac_serde::protobuf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let profiles = protobuf::<Profile>();
    decode_and_reencode::<Profile>(bytes, &profiles);
    assert!(Address::decode(bytes, &profiles).is_err());
    assert!(String::decode(bytes, &profiles).is_err());
    let addresses = protobuf::<Address>();
    decode_and_reencode::<Address>(bytes, &addresses);
});
