//! `BlockingAuthenticator` on plain threads, with no async runtime.
//!
//! Runs against the crate's mock authorization server used as a transport
//! (no sockets): discovery, a client credentials token, the cached token
//! shared by several threads, a resource server's rejection and the new
//! token that follows. It prints what happened, never the access token.
//!
//! Run it with
//! `cargo run --no-default-features --features blocking,mock --example blocking`.

use std::thread;

use service_auth::blocking::BlockingAuthenticator;
use service_auth::endpoint::{Issuer, UrlPolicy};
use service_auth::flow::{ClientAuth, ClientCredentials};
use service_auth::method::{Endpoints, Method};
use service_auth::mock::{MockServer, SecretMethod};
use service_auth::secret::ClientSecret;
use service_auth::time::{Clock, SystemClock};

const ISSUER: &str = "https://auth.example.com";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = MockServer::builder(ISSUER)
        .client_secret("billing-service", "s3cret", SecretMethod::Basic)
        .build();

    // 1. Configure the method and where the provider is; the token endpoint
    //    is discovered on first use.
    let issuer = Issuer::parse(ISSUER, UrlPolicy::https_only())?;
    let secret = ClientSecret::new("s3cret");
    let method = Method::from(ClientCredentials::new(
        "billing-service",
        ClientAuth::SecretBasic(secret),
    ));
    let auth = BlockingAuthenticator::builder(method, Endpoints::Discover(issuer))
        .build(server.clone())?;
    println!("method: {}", auth.method_name());

    // 2. Many threads ask at once; they share one cached token.
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let auth = auth.clone();
            thread::spawn(move || auth.token().map(|token| token.generation()))
        })
        .collect();
    for worker in workers {
        let generation = worker.join().map_err(|_| "worker panicked")??;
        println!("worker got token generation {generation}");
    }
    let token = auth.token()?;
    let lifetime = token.lifetime().unwrap_or_default();
    println!(
        "token lifetime: {} s, refreshed ahead of expiry",
        lifetime.as_secs()
    );

    // 3. Call a resource server with `Authorization: Bearer …`.
    let status = call_resource(&server, &auth)?;
    println!("resource answered {status}");

    // 4. The provider revokes the token; the resource server answers 401, the
    //    token is invalidated, and the next call fetches a new one.
    server.revoke_all();
    let mut request = http::Request::get(server.resource_url()).body(Vec::new())?;
    let generation = auth.authorize(&mut request)?;
    let status = server.handle(request, SystemClock.now()).status();
    println!("resource answered {status} for generation {generation}");
    if status == http::StatusCode::UNAUTHORIZED {
        auth.invalidate(generation);
    }
    let status = call_resource(&server, &auth)?;
    println!(
        "resource answered {status} with generation {}",
        auth.token()?.generation()
    );
    println!("token requests: {}", server.token_requests());
    Ok(())
}

fn call_resource(
    server: &MockServer,
    auth: &BlockingAuthenticator,
) -> Result<http::StatusCode, Box<dyn std::error::Error>> {
    let mut request = http::Request::get(server.resource_url()).body(Vec::new())?;
    auth.authorize(&mut request)?;
    Ok(server.handle(request, SystemClock.now()).status())
}
