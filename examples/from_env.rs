//! An authenticator configured entirely from `SERVICE_AUTH_*` environment
//! variables, over the reqwest transport.
//!
//! It gets one access token and prints the method, the expiry and a short
//! fingerprint of the token (the first 8 hex digits of its SHA-256), never
//! the token itself. On failure it prints the error and exits with status 1.
//!
//! ```text
//! SERVICE_AUTH_ISSUER=https://my-instance.zitadel.cloud \
//! SERVICE_AUTH_KEY_FILE=/run/secrets/service-user.json \
//!     cargo run --features reqwest --example from_env
//! ```
//!
//! A personal access token needs no request at all:
//!
//! ```text
//! SERVICE_AUTH_ISSUER=https://auth.example.com SERVICE_AUTH_TOKEN=<token> \
//!     cargo run --features reqwest --example from_env
//! ```
//!
//! See `service_auth::config` for every variable.

#[cfg(feature = "reqwest")]
#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(message) = run().await {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

#[cfg(feature = "reqwest")]
async fn run() -> Result<(), String> {
    use service_auth::config::Config;

    let config = Config::from_env().map_err(|err| err.to_string())?;
    let method = config.method_name();
    let auth = config.build_reqwest().map_err(|err| err.to_string())?;
    let token = auth.token().await.map_err(|err| err.to_string())?;

    println!("method:      {method}");
    match token.lifetime() {
        Some(lifetime) => println!("expires in:  {} s", lifetime.as_secs()),
        None => println!("expires in:  never (a personal access token is used as it is)"),
    }
    println!(
        "fingerprint: {}",
        fingerprint(token.access_token().secret())
    );
    Ok(())
}

/// The first 8 hex digits of the SHA-256 of `token`: enough to tell two
/// tokens apart in a log, far too little to recover or replay one.
#[cfg(feature = "reqwest")]
fn fingerprint(token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    digest.as_ref()[..4]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(not(feature = "reqwest"))]
fn main() {
    eprintln!("error: this example needs the reqwest transport: run it with `--features reqwest`");
    std::process::exit(2);
}
