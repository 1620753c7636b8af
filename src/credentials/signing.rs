//! The private signing key and its public half.

use std::fmt;

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, ParsedPublicKey, RsaKeyPair,
    RsaPublicKeyComponents,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

use super::{Algorithm, KeyError, KeyFormat, KeyType};

/// A private key that signs assertions.
///
/// The algorithm follows from the key: RSA signs with RS256, P-256 with
/// ES256, Ed25519 with EdDSA. `Debug` shows the algorithm and the key id,
/// never key material; the key pair lives in the crypto library, which wipes
/// it when the key is dropped.
///
/// # Examples
///
/// ```
/// use service_auth::credentials::{Algorithm, SigningKey};
///
/// let key = SigningKey::generate(Algorithm::Es256, "key-1")?;
/// let signature = key.sign(b"header.claims")?;
/// assert!(key.public_key().verify(b"header.claims", &signature));
/// # Ok::<(), service_auth::credentials::KeyError>(())
/// ```
pub struct SigningKey {
    key_id: String,
    pair: Pair,
    public: PublicKey,
    /// The base64url JWS protected header (RFC 7515 §7.1), built once so that
    /// signing an assertion only encodes the claims.
    encoded_header: Box<str>,
}

/// The parsed key pair, one variant per key type.
pub(super) enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

impl Pair {
    fn key_type(&self) -> KeyType {
        match self {
            Self::Rsa(_) => KeyType::Rsa,
            Self::Ec(_) => KeyType::EcP256,
            Self::Ed(_) => KeyType::Ed25519,
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm())
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a fresh key: RSA-2048 for RS256, P-256 for ES256, Ed25519
    /// for EdDSA. Meant for tests, examples and the mock server; production
    /// keys are registered at the provider and read from a file.
    ///
    /// # Errors
    ///
    /// [`KeyError::GenerationFailed`] when the crypto library fails, and
    /// [`KeyError::EmptyKeyId`] for an empty key id.
    pub fn generate(algorithm: Algorithm, key_id: impl Into<String>) -> Result<Self, KeyError> {
        let failed = |_| KeyError::GenerationFailed { algorithm };
        let pair = match algorithm {
            Algorithm::Rs256 => Pair::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).map_err(failed)?),
            Algorithm::Es256 => Pair::Ec(
                EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(failed)?,
            ),
            Algorithm::EdDsa => Pair::Ed(Ed25519KeyPair::generate().map_err(failed)?),
        };
        Self::new(pair, key_id.into())
    }

    /// Checks that the key signs with `algorithm` and returns it unchanged.
    ///
    /// Each key type signs with exactly one algorithm; this makes a
    /// configured algorithm explicit and refuses a mismatch early, before the
    /// first token request.
    ///
    /// # Errors
    ///
    /// [`KeyError::AlgorithmMismatch`] when the key is of another type.
    pub fn with_algorithm(self, algorithm: Algorithm) -> Result<Self, KeyError> {
        if algorithm == self.algorithm() {
            return Ok(self);
        }
        Err(KeyError::AlgorithmMismatch {
            requested: algorithm.as_str().to_owned(),
            key_type: self.key_type(),
            expected: self.algorithm(),
        })
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.key_type().algorithm()
    }

    /// The type of this key.
    pub fn key_type(&self) -> KeyType {
        self.pair.key_type()
    }

    /// The key id (`kid`) the provider knows this key by.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Signs `message` (the JWS signing input, RFC 7515 §5.1) and returns the
    /// raw JWS signature: PKCS#1 v1.5 for RS256, the fixed 64-byte `r || s`
    /// for ES256 (RFC 7518 §3.4, not ASN.1), 64 bytes for EdDSA.
    ///
    /// # Errors
    ///
    /// [`KeyError::SigningFailed`] when the crypto library fails.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.sign_with(message, <[u8]>::to_vec)
    }

    /// The public half of this key, with the same key id.
    pub fn public_key(&self) -> PublicKey {
        self.public.clone()
    }

    /// Encodes the key as a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), for
    /// tests and examples that write key files.
    ///
    /// # Errors
    ///
    /// [`KeyError::EncodingFailed`] when the crypto library fails.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        let der = self.to_pkcs8_der()?;
        Ok(super::pem::encode("PRIVATE KEY", &der))
    }

    /// Encodes the key as PKCS#8 DER, wiped when dropped.
    ///
    /// # Errors
    ///
    /// [`KeyError::EncodingFailed`] when the crypto library fails.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let failed = |_| KeyError::EncodingFailed {
            key_type: self.key_type(),
            format: KeyFormat::Pkcs8,
        };
        let der = match &self.pair {
            Pair::Rsa(pair) => Zeroizing::new(pair.as_der().map_err(failed)?.as_ref().to_vec()),
            Pair::Ec(pair) => Zeroizing::new(pair.to_pkcs8v1().map_err(failed)?.as_ref().to_vec()),
            Pair::Ed(pair) => Zeroizing::new(pair.to_pkcs8v1().map_err(failed)?.as_ref().to_vec()),
        };
        Ok(der)
    }

    /// Builds a key from a parsed pair, checking the key id.
    pub(super) fn new(pair: Pair, key_id: String) -> Result<Self, KeyError> {
        if key_id.is_empty() {
            return Err(KeyError::EmptyKeyId);
        }
        let algorithm = pair.key_type().algorithm();
        let encoded_header = encode_header(algorithm, &key_id);
        let public = public_half(&pair, &key_id)?;
        Ok(Self {
            key_id,
            pair,
            public,
            encoded_header,
        })
    }

    /// The length of the raw signatures this key makes.
    pub(crate) fn signature_len(&self) -> usize {
        match &self.pair {
            Pair::Rsa(pair) => pair.public_modulus_len(),
            Pair::Ec(_) | Pair::Ed(_) => 64,
        }
    }

    /// The parsed key pair.
    pub(super) fn pair(&self) -> &Pair {
        &self.pair
    }

    /// The base64url protected header `{"alg":…,"kid":…,"typ":"JWT"}`.
    pub(crate) fn encoded_header(&self) -> &str {
        &self.encoded_header
    }

    /// Signs `message` and hands the signature to `use_signature`, without
    /// copying it out of the crypto library's buffer where that is avoidable.
    pub(crate) fn sign_with<R>(
        &self,
        message: &[u8],
        use_signature: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, KeyError> {
        let failed = |_| KeyError::SigningFailed {
            algorithm: self.algorithm(),
        };
        match &self.pair {
            Pair::Rsa(pair) => {
                // Wiped on drop: with the (guessable) header and claims, the
                // signature completes a usable assertion.
                let mut signature = Zeroizing::new(vec![0; pair.public_modulus_len()]);
                let rng = SystemRandom::new();
                pair.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut signature)
                    .map_err(failed)?;
                Ok(use_signature(&signature))
            }
            Pair::Ec(pair) => {
                let signature = pair.sign(&SystemRandom::new(), message).map_err(failed)?;
                Ok(use_signature(signature.as_ref()))
            }
            Pair::Ed(pair) => Ok(use_signature(pair.sign(message).as_ref())),
        }
    }
}

/// Derives the public half of `pair`.
fn public_half(pair: &Pair, key_id: &str) -> Result<PublicKey, KeyError> {
    let (material, parsed) = match pair {
        Pair::Rsa(pair) => {
            let components = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
            let material = PublicMaterial::Rsa {
                n: components.n.clone().into(),
                e: components.e.clone().into(),
            };
            let parsed = components.to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256);
            (material, parsed)
        }
        Pair::Ec(pair) => {
            // The uncompressed point is 0x04 || x || y (SEC 1 §2.3.3), 65
            // bytes for P-256.
            let point = pair.public_key().as_ref();
            let parsed = ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point);
            let coordinates = point.get(1..).unwrap_or_default();
            let (x, y) = coordinates.split_at_checked(32).unwrap_or_default();
            let material = PublicMaterial::Ec {
                x: x.into(),
                y: y.into(),
            };
            (material, parsed)
        }
        Pair::Ed(pair) => {
            let x: Box<[u8]> = pair.public_key().as_ref().into();
            let parsed = ParsedPublicKey::new(&signature::ED25519, &x);
            (PublicMaterial::Ed { x }, parsed)
        }
    };
    let key_type = pair.key_type();
    let parsed = parsed.map_err(|error| KeyError::InvalidKey {
        key_type,
        reason: error.description_(),
    })?;
    PublicKey::from_parts(key_id.to_owned(), material, parsed)
}

/// Builds and encodes the JWS protected header (RFC 7515 §4.1, RFC 7519 §5.1).
fn encode_header(algorithm: Algorithm, key_id: &str) -> Box<str> {
    let mut json = Vec::with_capacity(40 + key_id.len());
    json.extend_from_slice(b"{\"alg\":\"");
    json.extend_from_slice(algorithm.as_str().as_bytes());
    json.extend_from_slice(b"\",\"kid\":");
    crate::assertion::write_json_string(&mut json, key_id);
    json.extend_from_slice(b",\"typ\":\"JWT\"}");
    URL_SAFE_NO_PAD.encode(json).into_boxed_str()
}

/// A public key that verifies assertions, with its key id.
///
/// `Debug` shows the algorithm and the key id.
#[derive(Clone)]
pub struct PublicKey {
    key_id: String,
    material: PublicMaterial,
    parsed: ParsedPublicKey,
    /// The X.509 SubjectPublicKeyInfo DER, encoded once.
    spki: Box<[u8]>,
}

/// The public key's components, as a JWK carries them.
#[derive(Clone)]
pub(super) enum PublicMaterial {
    Rsa {
        n: Box<[u8]>,
        e: Box<[u8]>,
    },
    /// The affine coordinates, 32 bytes each.
    Ec {
        x: Box<[u8]>,
        y: Box<[u8]>,
    },
    Ed {
        x: Box<[u8]>,
    },
}

impl PublicMaterial {
    fn key_type(&self) -> KeyType {
        match self {
            Self::Rsa { .. } => KeyType::Rsa,
            Self::Ec { .. } => KeyType::EcP256,
            Self::Ed { .. } => KeyType::Ed25519,
        }
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("algorithm", &self.algorithm())
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl PublicKey {
    /// Builds a key from its components and their parsed form.
    pub(super) fn from_parts(
        key_id: String,
        material: PublicMaterial,
        parsed: ParsedPublicKey,
    ) -> Result<Self, KeyError> {
        let spki: Result<PublicKeyX509Der<'static>, _> = parsed.as_der();
        let spki = spki.map_err(|_| KeyError::EncodingFailed {
            key_type: material.key_type(),
            format: KeyFormat::Spki,
        })?;
        Ok(Self {
            key_id,
            spki: spki.as_ref().into(),
            material,
            parsed,
        })
    }

    /// The algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.key_type().algorithm()
    }

    /// The type of this key.
    pub fn key_type(&self) -> KeyType {
        self.material.key_type()
    }

    /// The key id (`kid`) of the key.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Returns `true` when `signature` is a valid signature of `message` under
    /// this key and its algorithm (the raw JWS form, as [`SigningKey::sign`]
    /// makes it).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.parsed.verify_sig(message, signature).is_ok()
    }

    /// The public JWK (RFC 7517, RFC 7518 §6, RFC 8037 §2) with `kty`, `kid`,
    /// `alg`, `use: "sig"` and the key's components.
    pub fn to_jwk(&self) -> serde_json::Value {
        let mut jwk = serde_json::Map::new();
        let text = |bytes: &[u8]| serde_json::Value::String(URL_SAFE_NO_PAD.encode(bytes));
        match &self.material {
            PublicMaterial::Rsa { n, e } => {
                jwk.insert("kty".into(), "RSA".into());
                jwk.insert("n".into(), text(n));
                jwk.insert("e".into(), text(e));
            }
            PublicMaterial::Ec { x, y } => {
                jwk.insert("kty".into(), "EC".into());
                jwk.insert("crv".into(), "P-256".into());
                jwk.insert("x".into(), text(x));
                jwk.insert("y".into(), text(y));
            }
            PublicMaterial::Ed { x } => {
                jwk.insert("kty".into(), "OKP".into());
                jwk.insert("crv".into(), "Ed25519".into());
                jwk.insert("x".into(), text(x));
            }
        }
        jwk.insert("kid".into(), self.key_id.clone().into());
        jwk.insert("alg".into(), self.algorithm().as_str().into());
        jwk.insert("use".into(), "sig".into());
        serde_json::Value::Object(jwk)
    }

    /// The key as a PEM `PUBLIC KEY` (X.509 SubjectPublicKeyInfo, RFC 5280
    /// §4.1.2.7), e.g. to register it at a provider.
    pub fn to_spki_pem(&self) -> String {
        let mut pem = String::new();
        super::pem::encode_into("PUBLIC KEY", &self.spki, &mut pem);
        pem
    }

    /// The key as DER X.509 SubjectPublicKeyInfo (RFC 5280 §4.1.2.7).
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }
}
