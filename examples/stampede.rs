//! A thousand tasks ask for a token at the moment it expires.
//!
//! Libraries without single flight send one token request per caller here.
//! The `Authenticator` sends one, and every caller gets its result. The
//! example runs against the crate's mock authorization server on a manual
//! clock (no sockets), with the answer held back 50 ms so that every caller
//! arrives while the request is in flight.
//!
//! Run it with `cargo run --all-features --example stampede`; the last line
//! is `token requests: 1`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use service_auth::authenticator::Authenticator;
use service_auth::endpoint::{Issuer, UrlPolicy};
use service_auth::flow::{ClientAuth, ClientCredentials};
use service_auth::method::{Endpoints, Method};
use service_auth::mock::{Fault, MockServer, SecretMethod};
use service_auth::secret::ClientSecret;
use service_auth::time::{ManualClock, Now};
use tokio::sync::Barrier;

const ISSUER: &str = "https://auth.example.com";
const CALLERS: usize = 1000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let clock = ManualClock::new(Now::new(Instant::now(), SystemTime::now()));
    let server = MockServer::builder(ISSUER)
        .client_secret("svc", "s3cret", SecretMethod::Basic)
        .clock(clock.clone())
        .build();
    let issuer = Issuer::parse(ISSUER, UrlPolicy::https_only())?;
    let auth = ClientAuth::SecretBasic(ClientSecret::new("s3cret"));
    let method = Method::from(ClientCredentials::new("svc", auth));
    // Without background refresh, so that the token really expires.
    let auth = Authenticator::builder(method, Endpoints::Discover(issuer))
        .clock(clock.clone())
        .background_refresh(false)
        .build(server.clone())?;

    let first = auth.token().await?;
    println!("cached token generation {}", first.generation());
    clock.advance(first.lifetime().unwrap_or_default() + Duration::from_secs(1));
    println!("the token has expired; {CALLERS} callers ask for one at once");

    server.push_fault(Fault::Delay(Duration::from_millis(50)));
    let before = server.token_requests();
    let barrier = Arc::new(Barrier::new(CALLERS));
    let started = Instant::now();
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (auth, barrier) = (auth.clone(), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                auth.token().await.map(|token| token.generation())
            })
        })
        .collect();
    let mut served = 0;
    for caller in callers {
        let generation = caller.await??;
        served += usize::from(generation.get() == 2);
    }
    println!(
        "{served} of {CALLERS} callers got generation 2 in {} ms",
        started.elapsed().as_millis()
    );
    println!("token requests: {}", server.token_requests() - before);
    Ok(())
}
