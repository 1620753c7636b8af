//! Credentials: private keys and the ZITADEL key file.
//!
//! A [`SigningKey`] is parsed once (PEM as PKCS#1, PKCS#8 or SEC1; JWK; the
//! ZITADEL key file) and signs many assertions; its algorithm follows from the
//! key (RSA → RS256, P-256 → ES256, Ed25519 → EdDSA). A [`KeyRing`] holds the
//! key in use and lets it be replaced on a live authenticator.

// The parsing, signing and verification live in submodules; this file keeps
// the public surface that the rest of the crate builds on.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;

/// A signature algorithm for assertions (RFC 7518 §3.1, RFC 8037).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl Algorithm {
    /// The JOSE `alg` value.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a key could not be read or used. Never contains key material.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Placeholder replaced by the key module's real variants.
    #[error("key error: {0}")]
    Invalid(String),
}

/// A private key that signs assertions. `Debug` shows the algorithm and the
/// key id, never key material; the key is wiped from memory on drop.
pub struct SigningKey {
    algorithm: Algorithm,
    key_id: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The key id (`kid`) the provider knows this key by.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Signs `message` (the JWS signing input).
    ///
    /// # Errors
    ///
    /// [`KeyError`] when the signing library fails.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let _ = message;
        Err(KeyError::Invalid("not built yet".into()))
    }
}

/// The key in use, replaceable while requests are being signed.
#[derive(Clone)]
pub struct KeyRing {
    current: Arc<ArcSwap<SigningKey>>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("KeyRing").field(&self.current.load()).finish()
    }
}

impl KeyRing {
    /// A ring holding `key`.
    pub fn new(key: SigningKey) -> Self {
        Self {
            current: Arc::new(ArcSwap::from_pointee(key)),
        }
    }

    /// The key that signs the next assertion.
    pub fn current(&self) -> Arc<SigningKey> {
        self.current.load_full()
    }

    /// Signs the next assertions with `key`; assertions already built keep
    /// their signature.
    pub fn replace(&self, key: SigningKey) {
        self.current.store(Arc::new(key));
    }
}
