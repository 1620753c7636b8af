//! Rotating the signing key of a live authenticator, without failing a call.
//!
//! ```text
//! cargo run --example key_rotation
//! ```
//!
//! The order that never fails a request: register the new public key at the
//! provider, switch the authenticator to the new private key, and retire the
//! old public key once the tokens obtained with it have expired. The cached
//! token keeps being served during the switch; the next token request is
//! signed with the new key.

use std::error::Error;

use service_auth::config::Config;
use service_auth::credentials::{Algorithm, KeyRing, SigningKey};
use service_auth::mock::MockServer;

const ISSUER: &str = "https://auth.mock.service-auth.test";
const CLIENT: &str = "reporting";

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let old_key = SigningKey::generate(Algorithm::Es256, "reporting-2026-11")?;
    let new_key = SigningKey::generate(Algorithm::Es256, "reporting-2026-12")?;

    // 1. The provider knows both public keys (in real life: upload the new
    //    one next to the old one).
    let provider = MockServer::builder(ISSUER)
        .client_key(CLIENT, old_key.public_key())
        .client_key(CLIENT, new_key.public_key())
        .build();

    let keys = KeyRing::new(old_key);
    let auth =
        Config::private_key_jwt_client(ISSUER, CLIENT, keys.clone()).build(provider.clone())?;
    let before = auth.token().await?;

    // 2. Switch to the new key; `auth.key_ring()` is the same ring. A key
    //    file can be re-read with `keys.replace_from_key_file(path)` instead.
    keys.replace(new_key);
    let during = auth.token().await?; // still the cached token: nothing fails
    assert_eq!(before.generation(), during.generation());

    // 3. The next token request is signed with the new key. (A refresh ahead
    //    of expiry does this on its own; here we ask for it at once.)
    auth.invalidate(during.generation());
    let after = auth.token().await?;

    let key_ids: Vec<_> = provider
        .requests()
        .into_iter()
        .filter_map(|request| request.key_id)
        .collect();
    println!("token requests signed with: {}", key_ids.join(", "));
    println!(
        "generation {} -> {}: no call failed during the rotation",
        before.generation(),
        after.generation()
    );
    Ok(())
}
