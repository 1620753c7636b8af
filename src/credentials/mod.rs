//! Credentials: private keys and the ZITADEL key file.
//!
//! A [`SigningKey`] is parsed once (PEM as PKCS#1, PKCS#8 or SEC1; DER; JWK;
//! the ZITADEL [`KeyFile`]) and signs many assertions; its algorithm follows
//! from the key (RSA → RS256, P-256 → ES256, Ed25519 → EdDSA). Its
//! [`PublicKey`] verifies them and exports itself as a JWK or a PEM
//! `PUBLIC KEY`, for registering the key at a provider. A [`KeyRing`] holds
//! the key in use and lets it be replaced on a live authenticator.
//!
//! Key material lives in the crypto library (aws-lc), which wipes it when a
//! key is dropped; the buffers this module decodes keys into are wiped too.
//! No `Debug` output or [`KeyError`] shows key material.

// The parsing, signing and verification live in submodules; this file keeps
// the small shared types and the key ring.

mod der;
mod error;
mod jwk;
mod key_file;
mod pem;
mod signing;
mod text;

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;

pub use error::KeyError;
pub(crate) use error::json_category;
pub use key_file::KeyFile;
pub use signing::{PublicKey, SigningKey};

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

    /// The algorithm named by a JOSE `alg` value (RFC 7518 §3.1, RFC 8037 §3.1),
    /// or `None` for any other value, `"none"` included.
    pub fn from_jose(alg: &str) -> Option<Self> {
        match alg {
            "RS256" => Some(Self::Rs256),
            "ES256" => Some(Self::Es256),
            "EdDSA" => Some(Self::EdDsa),
            _ => None,
        }
    }

    /// The type of key that signs with this algorithm.
    pub fn key_type(&self) -> KeyType {
        match self {
            Self::Rs256 => KeyType::Rsa,
            Self::Es256 => KeyType::EcP256,
            Self::EdDsa => KeyType::Ed25519,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of a private or public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyType {
    /// RSA (2048 to 8192 bits).
    Rsa,
    /// Elliptic curve P-256 (secp256r1).
    EcP256,
    /// Edwards curve Ed25519.
    Ed25519,
}

impl KeyType {
    /// The algorithm keys of this type sign with.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::Rsa => Algorithm::Rs256,
            Self::EcP256 => Algorithm::Es256,
            Self::Ed25519 => Algorithm::EdDsa,
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Rsa => "RSA",
            Self::EcP256 => "EC P-256",
            Self::Ed25519 => "Ed25519",
        })
    }
}

/// An encoding of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyFormat {
    /// PKCS#1 `RSAPrivateKey` (RFC 8017 appendix A.1.2), PEM label `RSA PRIVATE KEY`.
    Pkcs1,
    /// PKCS#8 `PrivateKeyInfo` (RFC 5208, RFC 5958), PEM label `PRIVATE KEY`.
    Pkcs8,
    /// SEC1 `ECPrivateKey` (RFC 5915), PEM label `EC PRIVATE KEY`.
    Sec1,
    /// X.509 `SubjectPublicKeyInfo` (RFC 5280 §4.1.2.7), PEM label `PUBLIC KEY`.
    Spki,
}

impl fmt::Display for KeyFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pkcs1 => "PKCS#1",
            Self::Pkcs8 => "PKCS#8",
            Self::Sec1 => "SEC1",
            Self::Spki => "SubjectPublicKeyInfo",
        })
    }
}

/// The key in use, replaceable while requests are being signed.
#[derive(Clone)]
pub struct KeyRing {
    current: Arc<ArcSwap<SigningKey>>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("KeyRing")
            .field(&self.current.load())
            .finish()
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
    ///
    /// Rotation without a failed request: register the new key at the
    /// provider, `replace` the key here, and retire the old key at the
    /// provider once the tokens it obtained have expired. Tokens already
    /// cached stay valid; the next refresh signs with the new key.
    pub fn replace(&self, key: SigningKey) {
        self.current.store(Arc::new(key));
    }

    /// Reads the ZITADEL key file at `path` again (with the same permission
    /// check as at start-up) and signs the next assertions with its key.
    ///
    /// On any error the key in use stays in use.
    ///
    /// # Errors
    ///
    /// Those of [`KeyFile::read`].
    pub fn replace_from_key_file(&self, path: impl AsRef<std::path::Path>) -> Result<(), KeyError> {
        let key = KeyFile::read(path)?.into_key();
        self.replace(key);
        Ok(())
    }
}

impl From<SigningKey> for KeyRing {
    fn from(key: SigningKey) -> Self {
        Self::new(key)
    }
}

#[cfg(test)]
mod tests;
