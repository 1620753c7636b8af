//! Keys generated fresh at every bench start, and the Google-style
//! service-account JSON that yup-oauth2 and gcp_auth read.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The algorithms an assertion is signed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256, RSA-2048.
    Rs256,
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl Alg {
    /// Every algorithm, in table order.
    pub const ALL: [Alg; 3] = [Alg::Rs256, Alg::Es256, Alg::EdDsa];

    /// The JOSE name.
    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
        }
    }
}

/// A private key as PKCS#8 DER and PEM.
#[derive(Clone)]
pub struct Key {
    /// The algorithm it signs with.
    pub alg: Alg,
    /// PKCS#8 `PrivateKeyInfo`, DER.
    pub pkcs8_der: Vec<u8>,
    /// The same, PEM (`-----BEGIN PRIVATE KEY-----`).
    pub pkcs8_pem: String,
}

impl Key {
    /// A fresh key for `alg`.
    pub fn generate(alg: Alg) -> Self {
        // Invariant: key generation fails only when the system RNG does, and
        // then no benchmark can run.
        let der = match alg {
            Alg::Rs256 => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("rsa key");
                let der: aws_lc_rs::encoding::Pkcs8V1Der<'static> =
                    pair.as_der().expect("rsa pkcs8");
                der.as_ref().to_vec()
            }
            Alg::Es256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .expect("p-256 key")
                .to_pkcs8v1()
                .expect("p-256 pkcs8")
                .as_ref()
                .to_vec(),
            Alg::EdDsa => Ed25519KeyPair::generate()
                .expect("ed25519 key")
                .to_pkcs8v1()
                .expect("ed25519 pkcs8")
                .as_ref()
                .to_vec(),
        };
        let pkcs8_pem = pem("PRIVATE KEY", &der);
        Self {
            alg,
            pkcs8_der: der,
            pkcs8_pem,
        }
    }
}

/// PEM armour around `der` (RFC 7468), 64 columns.
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // Invariant: base64 output is ASCII.
        out.push_str(std::str::from_utf8(chunk).expect("ascii"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A Google-style service-account key JSON whose `token_uri` is `token_uri`.
pub fn service_account_json(key: &Key, token_uri: &str) -> String {
    serde_json::json!({
        "type": "service_account",
        "project_id": "bench-project",
        "private_key_id": "bench-key-1",
        "private_key": key.pkcs8_pem,
        "client_email": crate::SERVICE_USER,
        "client_id": "1234567890",
        "auth_uri": "http://127.0.0.1/unused",
        "token_uri": token_uri,
    })
    .to_string()
}
