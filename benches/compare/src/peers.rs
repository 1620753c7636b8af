//! The peer libraries, set up as their users do: a service-account JSON
//! whose `token_uri` points at the local token endpoint (both accept plain
//! `http://` there: their hyper-rustls connectors are built `https_or_http`).

use std::sync::Arc;

use gcp_auth::TokenProvider as _;

use crate::keys::{Key, service_account_json};

/// yup-oauth2's service-account authenticator.
pub type YupAuth = yup_oauth2::authenticator::Authenticator<
    yup_oauth2::hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
>;

/// A yup-oauth2 authenticator for the token endpoint at `token_uri`.
pub async fn yup(key: &Key, token_uri: &str) -> YupAuth {
    let json = service_account_json(key, token_uri);
    // Invariant: the JSON was written just above with every required field.
    let sa = yup_oauth2::parse_service_account_key(json).expect("yup service account");
    yup_oauth2::ServiceAccountAuthenticator::builder(sa)
        .build()
        .await
        .expect("yup authenticator")
}

/// One yup-oauth2 token read; the token string's length (to keep it alive).
pub async fn yup_token(auth: &YupAuth, scopes: &[&str]) -> usize {
    // Invariant: the bench's token endpoint answers every well-formed request.
    let token = auth.token(scopes).await.expect("yup token");
    token.token().map(str::len).unwrap_or(0)
}

/// gcp_auth's custom service account.
pub type GcpAuth = Arc<gcp_auth::CustomServiceAccount>;

/// A gcp_auth provider for the token endpoint at `token_uri`.
pub fn gcp(key: &Key, token_uri: &str) -> GcpAuth {
    let json = service_account_json(key, token_uri);
    // Invariant: as for `yup`.
    Arc::new(gcp_auth::CustomServiceAccount::from_json(&json).expect("gcp_auth service account"))
}

/// One gcp_auth token read; the token string's length.
pub async fn gcp_token(auth: &GcpAuth, scopes: &[&str]) -> usize {
    // Invariant: as for `yup_token`.
    let token = auth.token(scopes).await.expect("gcp_auth token");
    token.as_str().len()
}

/// oauth2's HTTP client over reqwest 0.13 (the crate's own adapter targets
/// reqwest 0.12): the request converted, sent, and the response collected
/// into an `http::Response<Vec<u8>>`, as the crate's adapter does.
pub struct OAuth2Reqwest(pub reqwest::Client);

impl<'c> oauth2::AsyncHttpClient<'c> for OAuth2Reqwest {
    type Error = oauth2::HttpClientError<reqwest::Error>;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<oauth2::HttpResponse, Self::Error>>
                + Send
                + Sync
                + 'c,
        >,
    >;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request).map_err(Box::new)?;
            let response = self.0.execute(request).await.map_err(Box::new)?;
            let mut builder = http::Response::builder()
                .status(response.status())
                .version(response.version());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let body = response.bytes().await.map_err(Box::new)?;
            builder
                .body(body.to_vec())
                .map_err(oauth2::HttpClientError::Http)
        })
    }
}

/// oauth2 5.0's basic client, configured for client credentials with
/// `client_secret_basic` (its default).
pub type OAuth2Client = oauth2::basic::BasicClient<
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

/// An oauth2 client for the token endpoint at `token_url`.
pub fn oauth2_client(token_url: &str) -> OAuth2Client {
    oauth2::basic::BasicClient::new(oauth2::ClientId::new(crate::CLIENT_ID.into()))
        .set_client_secret(oauth2::ClientSecret::new(crate::CLIENT_SECRET.into()))
        // Invariant: the URL was formatted by the bench.
        .set_token_uri(oauth2::TokenUrl::new(token_url.into()).expect("token url"))
}

/// One client-credentials exchange through oauth2; the access token's length.
pub async fn oauth2_exchange(client: &OAuth2Client, http: &OAuth2Reqwest) -> usize {
    use oauth2::TokenResponse as _;
    // Invariant: the bench's token endpoint answers every well-formed request.
    let token = client
        .exchange_client_credentials()
        .add_scope(oauth2::Scope::new(crate::SCOPE.into()))
        .request_async(http)
        .await
        .expect("oauth2 exchange");
    token.access_token().secret().len()
}
