//! The bytes every byte store writes for an [`Entry`]:
//!
//! ```text
//! fresh_until: f64 big-endian | created_at: f64 big-endian | payload
//! ```
//!
//! Unix seconds, `+inf` for "never stale"; the payload is the value encoded
//! by the store's [`Serializer`]. This is the Python package's `pack_entry`
//! for its json, msgpack and protobuf serializers, so Rust and Python
//! processes can share entries. Stores that compress (files, S3, GCS, as in
//! the Python package) wrap those bytes in gzip.
//!
//! Decoding checks everything it reads and returns [`Error::Corrupt`] or a
//! serializer error for garbage, truncated headers, another serializer's
//! bytes or another format; it never panics.

use ac_core::{Decoder, Entry, Error, Serializer};

/// Bytes of the header: two `f64`.
pub const HEADER_LEN: usize = 16;

/// The most bytes a gzip-framed entry may inflate to (a guard against
/// decompression bombs in a shared directory or bucket): 1 GiB.
pub const MAX_INFLATED: u64 = 1 << 30;

/// Whether entries are gzip-framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Raw entry bytes (Redis, as in the Python package).
    None,
    /// gzip at `level` 0 (store) to 9 (smallest); 6 is the Python default.
    Gzip {
        /// The deflate level, 0 to 9.
        level: u32,
    },
}

impl Compression {
    /// gzip at the Python package's default level, 6.
    pub const GZIP: Self = Self::Gzip { level: 6 };

    /// gzip at `level`, refused outside 0..=9.
    ///
    /// # Errors
    /// A level above 9.
    pub fn gzip(level: u32) -> Result<Self, Error> {
        if level > 9 {
            return Err(Error::invalid_config(format!(
                "gzip level must be 0 to 9, got {level}"
            )));
        }
        Ok(Self::Gzip { level })
    }
}

/// Encodes `entry` with `serializer`, framed as `compression` says.
///
/// # Errors
/// If the serializer cannot encode the value.
pub fn encode_entry(
    entry: &Entry,
    serializer: &dyn Serializer,
    compression: Compression,
) -> Result<Vec<u8>, Error> {
    let payload = entry.value.encode(serializer)?;
    let mut raw = Vec::with_capacity(HEADER_LEN + payload.len());
    raw.extend_from_slice(&entry.fresh_until.to_be_bytes());
    raw.extend_from_slice(&entry.created_at.to_be_bytes());
    raw.extend_from_slice(&payload);
    match compression {
        Compression::None => Ok(raw),
        Compression::Gzip { level } => gzip(&raw, level),
    }
}

/// Decodes bytes written by [`encode_entry`] (or by the Python package)
/// into an entry whose value `decoder` produces.
///
/// # Errors
/// [`Error::Corrupt`] for bytes that are not an entry; a serializer error
/// for a payload the serializer cannot read as the decoder's type.
pub fn decode_entry(
    bytes: &[u8],
    serializer: &dyn Serializer,
    decoder: &dyn Decoder,
    compression: Compression,
) -> Result<Entry, Error> {
    let inflated;
    let raw = match compression {
        Compression::None => bytes,
        Compression::Gzip { .. } => {
            inflated = gunzip(bytes)?;
            &inflated
        }
    };
    let (fresh_until, created_at) = header(raw)?;
    let value = decoder.decode(&raw[HEADER_LEN..], serializer)?;
    Ok(Entry::new(value, fresh_until, created_at))
}

/// Reads `(fresh_until, created_at)` without decoding the value.
///
/// # Errors
/// As [`decode_entry`], for the header.
pub fn decode_header(bytes: &[u8], compression: Compression) -> Result<(f64, f64), Error> {
    match compression {
        Compression::None => header(bytes),
        Compression::Gzip { .. } => header(&gunzip_prefix(bytes, HEADER_LEN as u64)?),
    }
}

fn header(raw: &[u8]) -> Result<(f64, f64), Error> {
    let (Some(fresh), Some(created)) = (raw.get(..8), raw.get(8..HEADER_LEN)) else {
        return Err(Error::corrupt(format!(
            "truncated entry header: {} of {HEADER_LEN} bytes",
            raw.len()
        )));
    };
    let read = |b: &[u8]| f64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
    let (fresh_until, created_at) = (read(fresh), read(created));
    // +inf is "never stale"; NaN or -inf cannot come from a real writer.
    if fresh_until.is_nan() || fresh_until == f64::NEG_INFINITY || !created_at.is_finite() {
        return Err(Error::corrupt(format!(
            "entry header holds impossible times ({fresh_until}, {created_at})"
        )));
    }
    Ok((fresh_until, created_at))
}

#[cfg(feature = "gzip")]
fn gzip(raw: &[u8], level: u32) -> Result<Vec<u8>, Error> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(raw.len() / 2 + 32),
        flate2::Compression::new(level),
    );
    encoder
        .write_all(raw)
        .and_then(|()| encoder.finish())
        .map_err(|e| Error::serialization("gzip", e))
}

#[cfg(feature = "gzip")]
fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, Error> {
    let out = gunzip_prefix(bytes, MAX_INFLATED + 1)?;
    if out.len() as u64 > MAX_INFLATED {
        return Err(Error::corrupt(format!(
            "entry inflates beyond {MAX_INFLATED} bytes"
        )));
    }
    Ok(out)
}

/// Inflates at most `limit` bytes of a gzip stream.
#[cfg(feature = "gzip")]
fn gunzip_prefix(bytes: &[u8], limit: u64) -> Result<Vec<u8>, Error> {
    use std::io::Read as _;
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Err(Error::corrupt("not a gzip-framed entry"));
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| Error::corrupt_caused_by("bad gzip framing", e))?;
    Ok(out)
}

#[cfg(not(feature = "gzip"))]
fn gzip(_raw: &[u8], _level: u32) -> Result<Vec<u8>, Error> {
    Err(Error::Unsupported(
        "gzip (enable ac-serde's gzip feature)".into(),
    ))
}

#[cfg(not(feature = "gzip"))]
fn gunzip(_bytes: &[u8]) -> Result<Vec<u8>, Error> {
    gzip(&[], 0)
}

#[cfg(not(feature = "gzip"))]
fn gunzip_prefix(_bytes: &[u8], _limit: u64) -> Result<Vec<u8>, Error> {
    gzip(&[], 0)
}
