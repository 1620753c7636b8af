//! Replays the committed fuzz seeds (`fuzz/corpus/<target>/seed-*`) through
//! the same entry points the byte-level cargo-fuzz targets call, so that
//! `cargo test` covers them on a machine without cargo-fuzz or a nightly
//! compiler.
//!
//! The structured targets (`flow_responses`, `mock_server_request`) decode
//! their input with `arbitrary`, which the library does not depend on; their
//! seeds are replayed by `cargo fuzz run`, which starts from the corpus.

#[path = "../fuzz/src/bytes.rs"]
mod bytes;

use std::fs;
use std::path::Path;

/// Runs `entry` on every seed of `target`, and returns how many there were.
fn replay(target: &str, entry: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut seeds: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("{} cannot be read: {err}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("seed-"))
        })
        .collect();
    seeds.sort();
    for seed in &seeds {
        let data = fs::read(seed).expect("a readable seed");
        entry(&data);
    }
    seeds.len()
}

#[test]
fn token_response_seeds() {
    assert!(replay("token_response", bytes::token_response) >= 5);
}

#[test]
fn error_response_seeds() {
    assert!(replay("error_response", bytes::error_response) >= 5);
}

#[test]
fn discovery_document_seeds() {
    assert!(replay("discovery_document", bytes::discovery_document) >= 5);
}

#[test]
fn zitadel_key_file_seeds() {
    assert!(replay("zitadel_key_file", bytes::zitadel_key_file) >= 2);
}

#[test]
fn pem_key_seeds() {
    assert!(replay("pem_key", bytes::pem_key) >= 5);
}

#[test]
fn jwk_key_seeds() {
    assert!(replay("jwk_key", bytes::jwk_key) >= 3);
}

#[test]
fn assertion_seeds() {
    assert!(replay("assertion", bytes::assertion) >= 5);
}

/// A discovery document whose `token_endpoint` holds a control character
/// (DEL) must not bring it into the error message, which ends up in logs.
/// Found by the `discovery_document` fuzz target; the seed
/// `fuzz/corpus/discovery_document/seed-regression-endpoint-control-char`
/// is this input.
#[test]
fn discovery_error_strips_control_characters() {
    use service_auth::endpoint::{Issuer, UrlPolicy};
    use service_auth::flow::Discovery;

    let policy = UrlPolicy::https_only();
    let issuer = Issuer::parse("https://auth.example.com", policy).expect("parses");
    let (awaiting, _request) = Discovery::new(issuer, policy).request();
    let body = "{\"issuer\":\"https://auth.example.com\",\
                \"token_endpoint\":\"http://auth.exhttps\u{7f}//auth.example.com/token\"}";
    let error = awaiting
        .handle_response(http::Response::new(body))
        .expect_err("the token endpoint is not a URL");
    let shown = error.to_string();
    assert!(!shown.chars().any(char::is_control), "{shown:?}");
}
