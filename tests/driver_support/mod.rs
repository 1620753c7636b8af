//! Setup shared by the driver tests (`authenticator`, `blocking`): the mock
//! authorization server on a manual clock, its issuer and credentials.
#![allow(dead_code)] // each test crate uses a different part

use std::time::{Duration, Instant, SystemTime};

use service_auth::endpoint::{Issuer, UrlPolicy};
use service_auth::flow::{ClientAuth, ClientCredentials};
use service_auth::method::Method;
use service_auth::mock::{MockServer, SecretMethod};
use service_auth::secret::ClientSecret;
use service_auth::time::{ManualClock, Now};

pub const ISSUER: &str = "https://mock.service-auth.test";
pub const CLIENT: &str = "svc";
pub const SECRET: &str = "s3cret";
pub const PAT: &str = "pat-0123456789";
pub const HOUR: Duration = Duration::from_secs(3600);

pub fn clock() -> ManualClock {
    ManualClock::new(Now::new(Instant::now(), SystemTime::now()))
}

/// The mock, knowing the client [`CLIENT`] with [`SECRET`] (Basic) and the
/// personal access token [`PAT`].
pub fn server(clock: &ManualClock) -> MockServer {
    MockServer::builder(ISSUER)
        .client_secret(CLIENT, SECRET, SecretMethod::Basic)
        .personal_access_token(PAT)
        .seed(1)
        .clock(clock.clone())
        .build()
}

pub fn issuer() -> Issuer {
    Issuer::parse(ISSUER, UrlPolicy::https_only()).expect("valid issuer")
}

/// Client credentials for [`CLIENT`] with `secret`, sent with Basic.
pub fn client_credentials(secret: &str) -> Method {
    let auth = ClientAuth::SecretBasic(ClientSecret::new(secret));
    Method::from(ClientCredentials::new(CLIENT, auth))
}
