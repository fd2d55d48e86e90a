//! Runnable examples of advanced-caching: see the `[[example]]` targets
//! (`cargo run --example quickstart`). This library is empty.
