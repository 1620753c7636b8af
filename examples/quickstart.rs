//! The three authentication methods, one API.
//!
//! With no configuration this runs every method against the embedded mock
//! authorization server (in-process, no sockets) and prints one line per
//! method. With `SERVICE_AUTH_*` variables set (see the README), it gets one
//! token from that real provider instead, over HTTPS.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! It prints the method and the token's expiry, never the token.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use service_auth::authenticator::Authenticator;
use service_auth::config::Config;
use service_auth::credentials::{Algorithm, KeyFile, SigningKey};
use service_auth::mock::{MockServer, SecretMethod};
use service_auth::secret::{ClientSecret, PersonalAccessToken};

const ISSUER: &str = "https://auth.mock.service-auth.test";

#[tokio::main]
async fn main() -> ExitCode {
    let result = if std::env::vars().any(|(name, _)| name.starts_with("SERVICE_AUTH_")) {
        real_provider().await
    } else {
        against_the_mock().await
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("quickstart failed: {err}");
            ExitCode::FAILURE
        }
    }
}

/// One token from the provider the environment describes.
async fn real_provider() -> Result<(), Box<dyn Error>> {
    let auth = Config::from_env()?.build_reqwest()?;
    report(&auth).await
}

/// Every method against the embedded mock server.
async fn against_the_mock() -> Result<(), Box<dyn Error>> {
    let key = SigningKey::generate(Algorithm::Rs256, "quickstart-key")?;
    let server = MockServer::builder(ISSUER)
        .service_user("quickstart-service-user", key.public_key())
        .client_secret(
            "quickstart-client",
            "quickstart-secret",
            SecretMethod::Basic,
        )
        .personal_access_token("quickstart-personal-access-token")
        .build();

    // A ZITADEL service-account key file, as the provider would hand it out.
    let dir = TempDir::new()?;
    let key_file = dir.write_private(
        "service-user.json",
        &KeyFile::service_account(key, "quickstart-service-user").to_json()?,
    )?;

    let methods = [
        Config::private_key_jwt(ISSUER, &key_file),
        Config::client_credentials(
            ISSUER,
            "quickstart-client",
            ClientSecret::new("quickstart-secret"),
        ),
        Config::personal_access_token(
            Some(ISSUER),
            PersonalAccessToken::new("quickstart-personal-access-token"),
        ),
    ];
    for config in methods {
        report(&config.build(server.clone())?).await?;
    }
    Ok(())
}

async fn report(auth: &Authenticator) -> Result<(), Box<dyn Error>> {
    let token = auth.token().await?;
    let expiry = match token.expires_at() {
        Some(at) => format!(
            "token expires in {} s",
            at.saturating_duration_since(Instant::now()).as_secs()
        ),
        None => "token never expires (used as given)".to_owned(),
    };
    println!("{}: {expiry}", auth.method_name());
    Ok(())
}

/// A private temporary folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> std::io::Result<Self> {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let unique = format!(
            "service-auth-quickstart-{}-{}",
            std::process::id(),
            since_epoch.as_nanos()
        );
        let path = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }

    /// Writes `contents` readable by the owner alone, as key files must be.
    fn write_private(&self, name: &str, contents: &str) -> std::io::Result<PathBuf> {
        let path = self.0.join(name);
        write_owner_only(&path, contents.as_bytes())?;
        Ok(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(unix)]
fn write_owner_only(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?
        .write_all(contents)
}

#[cfg(not(unix))]
fn write_owner_only(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, contents)
}
