//! Serializers: the same cached function over file stores in json,
//! msgpack, postcard, protobuf and a custom format, and the bytes each
//! writes. (The seed shows them on RedisCache; a file store shows the same
//! formats without a server.)
//!
//! Run with `cargo run --example serializers`.

use std::path::PathBuf;

use advanced_caching::crates::core::{ErasedDeserializer, Error, Serializer};
use advanced_caching::serializers::{Json, MsgPack, Postcard, protobuf};
use advanced_caching::{LocalFileCache, LocalFileCacheBuilder, cache};

#[derive(Clone, PartialEq, prost::Message, serde::Serialize, serde::Deserialize)]
struct User {
    #[prost(uint64, tag = "1")]
    id: u64,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(string, repeated, tag = "3")]
    roles: Vec<String>,
}

/// A custom format: anything implementing `Serializer` (name, dumps, loads).
#[derive(Debug)]
struct PrettyJson;

impl Serializer for PrettyJson {
    fn name(&self) -> &str {
        "pretty-json"
    }
    fn dumps(&self, value: &dyn erased_serde::Serialize) -> Result<Vec<u8>, Error> {
        serde_json::to_vec_pretty(value).map_err(|e| Error::serialization("pretty-json", e))
    }
    fn loads(
        &self,
        bytes: &[u8],
        visit: &mut dyn FnMut(ErasedDeserializer<'_, '_>) -> Result<(), erased_serde::Error>,
    ) -> Result<(), Error> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let mut erased = <dyn erased_serde::Deserializer<'_>>::erase(&mut de);
        visit(&mut erased).map_err(|e| Error::serialization("pretty-json", e))
    }
}

/// Gives a store its serializer.
type WithFormat = Box<dyn Fn(LocalFileCacheBuilder) -> LocalFileCacheBuilder>;

fn load_user(id: u64) -> User {
    User {
        id,
        name: format!("user-{id}"),
        roles: vec!["admin".into(), "billing".into()],
    }
}

fn demo(label: &str, dir: PathBuf, store: LocalFileCache) -> Result<(), Error> {
    let get_user = cache(3600)
        .key("user:{}")
        .store(store.clone())
        .wrap(load_user)?;
    let user = get_user.call(7);
    let again = get_user.call(7); // read back from the file and decoded
    assert!(user == again);
    let file = store.path_of("user:7");
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    println!("  {label:<12} {size:>4} bytes in {}", file.display());
    std::fs::remove_dir_all(dir).ok();
    Ok(())
}

fn main() -> Result<(), Error> {
    let base = std::env::temp_dir().join(format!("ac-serializers-{}", std::process::id()));
    println!("One cached function, five formats (gzip off to compare sizes):");
    let formats: Vec<(&str, WithFormat)> = vec![
        ("json", Box::new(|s| s.serializer(Json))),
        ("msgpack", Box::new(|s| s.serializer(MsgPack))),
        ("postcard", Box::new(|s| s.serializer(Postcard))),
        ("protobuf", Box::new(|s| s.serializer(protobuf::<User>()))),
        ("pretty-json", Box::new(|s| s.serializer(PrettyJson))),
    ];
    for (label, with_format) in formats {
        let dir = base.join(label);
        let store = with_format(LocalFileCache::builder(&dir).compress(false)).build()?;
        demo(label, dir, store)?;
    }
    let dir = base.join("json-gzip");
    demo(
        "json+gzip",
        dir.clone(),
        LocalFileCache::builder(&dir).build()?,
    )?;

    println!("\nA protobuf store holds its message type only:");
    let proto_dir = base.join("proto-only");
    let wrong = cache(60)
        .key("n")
        .store(
            LocalFileCache::builder(&proto_dir)
                .serializer(protobuf::<User>())
                .build()?,
        )
        .wrap(|()| 5u32)?;
    println!(
        "  a u32 through it still returns {} (the store error is logged, not raised)",
        wrong.call(())
    );
    std::fs::remove_dir_all(base).ok();
    Ok(())
}
