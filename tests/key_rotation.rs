//! Rotating the signing key of a live authenticator.
#![cfg(feature = "mock")]

use std::path::{Path, PathBuf};

use service_auth::config::Config;
use service_auth::credentials::{Algorithm, KeyError, KeyFile, SigningKey};
use service_auth::mock::MockServer;

const ISSUER: &str = "https://auth.rotation.test";
const USER: &str = "rotating-user";

fn key_ids(server: &MockServer) -> Vec<String> {
    server
        .requests()
        .into_iter()
        .filter_map(|request| request.key_id)
        .collect()
}

#[test]
fn a_re_read_key_file_signs_the_next_request_and_no_call_fails() {
    let old = SigningKey::generate(Algorithm::Rs256, "old-key").unwrap();
    let new = SigningKey::generate(Algorithm::EdDsa, "new-key").unwrap();
    let server = MockServer::builder(ISSUER)
        .service_user(USER, old.public_key())
        .service_user(USER, new.public_key())
        .build();
    let dir = TempDir::new("re-read");
    let path = dir.write_key_file(KeyFile::service_account(old, USER));
    let auth = Config::private_key_jwt(ISSUER, &path)
        .build_blocking(server.clone())
        .unwrap();
    let first = auth.token().unwrap();

    std::fs::remove_file(&path).unwrap();
    let path = dir.write_key_file(KeyFile::service_account(new, USER));
    auth.key_ring()
        .expect("private key JWT has keys")
        .replace_from_key_file(&path)
        .unwrap();
    assert_eq!(auth.token().unwrap().generation(), first.generation());

    auth.invalidate(first.generation());
    let second = auth.token().unwrap();
    assert!(second.generation() > first.generation());
    assert_eq!(key_ids(&server), ["old-key", "new-key"]);
}

#[test]
fn a_bad_key_file_leaves_the_key_in_use() {
    let key = SigningKey::generate(Algorithm::Es256, "kept-key").unwrap();
    let server = MockServer::builder(ISSUER)
        .service_user(USER, key.public_key())
        .build();
    let dir = TempDir::new("bad");
    let path = dir.write_key_file(KeyFile::service_account(key, USER));
    let auth = Config::private_key_jwt(ISSUER, &path)
        .build_blocking(server.clone())
        .unwrap();
    let keys = auth.key_ring().unwrap();

    let missing = dir.0.join("missing.json");
    let error = keys.replace_from_key_file(&missing).unwrap_err();
    assert!(
        matches!(error, KeyError::KeyFileUnreadable { .. }),
        "{error}"
    );
    assert_eq!(keys.current().key_id(), "kept-key");

    let token = auth.token().unwrap();
    auth.invalidate(token.generation());
    auth.token().unwrap();
    assert_eq!(key_ids(&server), ["kept-key", "kept-key"]);
}

#[test]
fn only_private_key_jwt_methods_have_keys() {
    let server = MockServer::builder(ISSUER).build();
    let auth = Config::client_credentials(
        ISSUER,
        "client",
        service_auth::secret::ClientSecret::new("secret"),
    )
    .build_blocking(server)
    .unwrap();
    assert!(auth.key_ring().is_none());
}

/// A private temporary folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "service-auth-rotation-{name}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn write_key_file(&self, file: KeyFile) -> PathBuf {
        let path = self.0.join(format!("{}.json", file.key_id()));
        write_owner_only(&path, file.to_json().unwrap().as_bytes());
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(unix)]
fn write_owner_only(path: &Path, contents: &[u8]) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    file.write_all(contents).unwrap();
}

#[cfg(not(unix))]
fn write_owner_only(path: &Path, contents: &[u8]) {
    std::fs::write(path, contents).unwrap();
}
