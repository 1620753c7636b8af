//! Reading keys from JSON Web Keys (RFC 7517): RSA (RFC 7518 §6.3),
//! EC P-256 (RFC 7518 §6.2) and OKP Ed25519 (RFC 8037 §2).
//!
//! The JWK is read with borrowed strings, so the private components are
//! never copied into strings of their own; their decoded bytes are wiped
//! after use.

use aws_lc_rs::error::KeyRejected;
use aws_lc_rs::rsa::KeyPairComponents;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, Ed25519KeyPair, ParsedPublicKey, RsaKeyPair, RsaPublicKeyComponents,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

use super::error::{json_category, safe_label};
use super::signing::{Pair, PublicMaterial};
use super::text::{Text, text};
use super::{KeyError, KeyType, PublicKey, SigningKey};

/// The byte length of a P-256 coordinate or scalar, and of an Ed25519 key.
const FIELD_LEN: usize = 32;

impl SigningKey {
    /// Reads a private key from a JWK: `kty` `RSA` (with `n`, `e`, `d`, `p`,
    /// `q`, `dp`, `dq`, `qi`), `EC` with `crv` `P-256` (`x`, `y`, `d`) or
    /// `OKP` with `crv` `Ed25519` (`x`, `d`).
    ///
    /// The key id comes from the JWK's `kid`, which is required. When `alg`
    /// is present it must be the key's algorithm; when `use` is present it
    /// must be `sig`.
    ///
    /// # Errors
    ///
    /// [`KeyError::InvalidJson`], [`KeyError::MalformedJwk`] naming the
    /// field, [`KeyError::UnsupportedKeyType`], [`KeyError::AlgorithmMismatch`]
    /// or [`KeyError::InvalidKey`].
    pub fn from_jwk(jwk_json: &str) -> Result<Self, KeyError> {
        let jwk = Jwk::parse(jwk_json)?;
        let key_id = jwk.key_id()?;
        let pair = match jwk.key_type()? {
            KeyType::Rsa => Pair::Rsa(jwk.rsa_pair()?),
            KeyType::EcP256 => Pair::Ec(jwk.ec_pair()?),
            KeyType::Ed25519 => Pair::Ed(jwk.ed_pair()?),
        };
        Self::new(pair, key_id)
    }
}

impl PublicKey {
    /// Reads a public key from a JWK, as [`SigningKey::from_jwk`] reads a
    /// private one; private members, when present, are ignored.
    ///
    /// # Errors
    ///
    /// As for [`SigningKey::from_jwk`].
    pub fn from_jwk(jwk_json: &str) -> Result<Self, KeyError> {
        let jwk = Jwk::parse(jwk_json)?;
        let key_id = jwk.key_id()?;
        let key_type = jwk.key_type()?;
        let (material, parsed) = match key_type {
            KeyType::Rsa => jwk.rsa_public()?,
            KeyType::EcP256 => {
                let (x, y) = (fixed("x", &jwk.x)?, fixed("y", &jwk.y)?);
                let point = uncompressed_point(&x, &y);
                let parsed = ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &point);
                (
                    PublicMaterial::Ec {
                        x: x[..].into(),
                        y: y[..].into(),
                    },
                    parsed,
                )
            }
            KeyType::Ed25519 => {
                let x = fixed("x", &jwk.x)?;
                let parsed = ParsedPublicKey::new(&signature::ED25519, &x[..]);
                (PublicMaterial::Ed { x: x[..].into() }, parsed)
            }
        };
        let parsed = parsed.map_err(rejected(key_type))?;
        PublicKey::from_parts(key_id, material, parsed)
    }
}

/// The members of a JWK this library reads, borrowed from the JSON text.
#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct Jwk<'a> {
    #[serde(borrow)]
    kty: Option<Text<'a>>,
    #[serde(borrow)]
    kid: Option<Text<'a>>,
    #[serde(borrow)]
    alg: Option<Text<'a>>,
    #[serde(borrow, rename = "use")]
    use_: Option<Text<'a>>,
    #[serde(borrow)]
    crv: Option<Text<'a>>,
    #[serde(borrow)]
    n: Option<Text<'a>>,
    #[serde(borrow)]
    e: Option<Text<'a>>,
    #[serde(borrow)]
    d: Option<Text<'a>>,
    #[serde(borrow)]
    p: Option<Text<'a>>,
    #[serde(borrow)]
    q: Option<Text<'a>>,
    #[serde(borrow)]
    dp: Option<Text<'a>>,
    #[serde(borrow)]
    dq: Option<Text<'a>>,
    #[serde(borrow)]
    qi: Option<Text<'a>>,
    #[serde(borrow)]
    x: Option<Text<'a>>,
    #[serde(borrow)]
    y: Option<Text<'a>>,
    #[serde(borrow)]
    oth: Option<Text<'a>>,
}

impl<'a> Jwk<'a> {
    fn parse(json: &'a str) -> Result<Self, KeyError> {
        let value: Result<Self, _> = serde_json::from_str(json);
        value.map_err(|error| KeyError::InvalidJson {
            document: "JWK",
            category: json_category(&error),
            line: error.line(),
            column: error.column(),
        })
    }

    fn key_id(&self) -> Result<String, KeyError> {
        match text(&self.kid) {
            Some(kid) if !kid.is_empty() => Ok(kid.to_owned()),
            _ => Err(malformed("kid", "a non-empty string naming the key")),
        }
    }

    /// The key type from `kty` and `crv`, with `alg` and `use` checked.
    fn key_type(&self) -> Result<KeyType, KeyError> {
        let Some(kty) = text(&self.kty) else {
            return Err(malformed("kty", "a string: \"RSA\", \"EC\" or \"OKP\""));
        };
        let key_type = match (kty, text(&self.crv)) {
            ("RSA", _) => KeyType::Rsa,
            ("EC", Some("P-256")) => KeyType::EcP256,
            ("OKP", Some("Ed25519")) => KeyType::Ed25519,
            ("EC" | "OKP", Some(crv)) => {
                return Err(KeyError::UnsupportedKeyType {
                    found: format!("JWK curve {}", safe_label(crv)),
                });
            }
            ("EC" | "OKP", _) => return Err(malformed("crv", "a string naming the curve")),
            (kty, _) => {
                return Err(KeyError::UnsupportedKeyType {
                    found: format!("JWK kty {}", safe_label(kty)),
                });
            }
        };
        self.check_use()?;
        self.check_algorithm(key_type)?;
        Ok(key_type)
    }

    fn check_use(&self) -> Result<(), KeyError> {
        match (&self.use_, text(&self.use_)) {
            (None, _) | (_, Some("sig")) => Ok(()),
            _ => Err(malformed("use", "\"sig\" (or absent) for a signing key")),
        }
    }

    fn check_algorithm(&self, key_type: KeyType) -> Result<(), KeyError> {
        let expected = key_type.algorithm();
        match (&self.alg, text(&self.alg)) {
            (None, _) => Ok(()),
            (_, Some(alg)) if alg == expected.as_str() => Ok(()),
            (_, Some(alg)) => Err(KeyError::AlgorithmMismatch {
                requested: safe_label(alg),
                key_type,
                expected,
            }),
            (_, None) => Err(malformed("alg", "a string naming the algorithm")),
        }
    }

    fn rsa_pair(&self) -> Result<RsaKeyPair, KeyError> {
        check_private(&self.d)?;
        if self.oth.is_some() {
            return Err(KeyError::UnsupportedKeyType {
                found: "RSA with more than two primes (`oth`)".to_owned(),
            });
        }
        let n = self.rsa_modulus()?;
        let e = bytes("e", &self.e)?;
        let components = KeyPairComponents {
            public_key: RsaPublicKeyComponents {
                n: strip_zeros(&n),
                e: strip_zeros(&e),
            },
            d: bytes("d", &self.d)?,
            p: bytes("p", &self.p)?,
            q: bytes("q", &self.q)?,
            dP: bytes("dp", &self.dp)?,
            dQ: bytes("dq", &self.dq)?,
            qInv: bytes("qi", &self.qi)?,
        };
        RsaKeyPair::from_components(&components).map_err(rejected(KeyType::Rsa))
    }

    fn rsa_public(
        &self,
    ) -> Result<(PublicMaterial, Result<ParsedPublicKey, KeyRejected>), KeyError> {
        let n = self.rsa_modulus()?;
        let e = bytes("e", &self.e)?;
        let components = RsaPublicKeyComponents {
            n: strip_zeros(&n),
            e: strip_zeros(&e),
        };
        let parsed = components.to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256);
        let material = PublicMaterial::Rsa {
            n: components.n.into(),
            e: components.e.into(),
        };
        Ok((material, parsed))
    }

    /// The modulus, refused with the size named when it is out of range.
    fn rsa_modulus(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let n = bytes("n", &self.n)?;
        let bits = super::der::integer_bits(&n);
        if !(2048..=8192).contains(&bits) {
            return Err(KeyError::UnsupportedKeyType {
                found: format!("RSA with a {bits}-bit modulus"),
            });
        }
        Ok(n)
    }

    fn ec_pair(&self) -> Result<EcdsaKeyPair, KeyError> {
        check_private(&self.d)?;
        let (x, y) = (fixed("x", &self.x)?, fixed("y", &self.y)?);
        let d = fixed("d", &self.d)?;
        let point = uncompressed_point(&x, &y);
        let ec = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        EcdsaKeyPair::from_private_key_and_public_key(ec, &d[..], &point)
            .map_err(rejected(KeyType::EcP256))
    }

    fn ed_pair(&self) -> Result<Ed25519KeyPair, KeyError> {
        check_private(&self.d)?;
        let x = fixed("x", &self.x)?;
        let d = fixed("d", &self.d)?;
        Ed25519KeyPair::from_seed_and_public_key(&d[..], &x[..]).map_err(rejected(KeyType::Ed25519))
    }
}

/// A required base64url member, decoded into a buffer wiped on drop.
fn bytes(field: &'static str, value: &Option<Text<'_>>) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let Some(text) = text(value) else {
        return Err(malformed(field, "a base64url string"));
    };
    let mut bytes = Zeroizing::new(Vec::with_capacity(text.len() * 3 / 4 + 1));
    URL_SAFE_NO_PAD
        .decode_vec(text, &mut bytes)
        .map_err(|_| malformed(field, "base64url without padding (RFC 7515 §2)"))?;
    if bytes.is_empty() {
        return Err(malformed(field, "a non-empty base64url string"));
    }
    Ok(bytes)
}

/// A required base64url member of exactly 32 bytes (RFC 7518 §6.2.1.2,
/// RFC 8037 §2).
fn fixed(field: &'static str, value: &Option<Text<'_>>) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let bytes = bytes(field, value)?;
    if bytes.len() != FIELD_LEN {
        return Err(malformed(
            field,
            "32 bytes, base64url-encoded (43 characters)",
        ));
    }
    Ok(bytes)
}

fn check_private(d: &Option<Text<'_>>) -> Result<(), KeyError> {
    match d {
        Some(_) => Ok(()),
        None => Err(malformed(
            "d",
            "present: this JWK holds only a public key, and signing needs the private key",
        )),
    }
}

/// `04 || x || y`, the uncompressed point (SEC 1 §2.3.3).
fn uncompressed_point(x: &[u8], y: &[u8]) -> Vec<u8> {
    let mut point = Vec::with_capacity(1 + x.len() + y.len());
    point.push(0x04);
    point.extend_from_slice(x);
    point.extend_from_slice(y);
    point
}

/// Drops leading zero bytes, which RFC 7518 §6.3.1.1 forbids in `n` and `e`
/// but some producers write.
fn strip_zeros(bytes: &[u8]) -> Vec<u8> {
    let start = bytes
        .iter()
        .position(|byte| *byte != 0)
        .unwrap_or(bytes.len());
    bytes[start..].to_vec()
}

fn malformed(field: &'static str, expected: &'static str) -> KeyError {
    KeyError::MalformedJwk { field, expected }
}

fn rejected(key_type: KeyType) -> impl Fn(KeyRejected) -> KeyError {
    move |error| KeyError::InvalidKey {
        key_type,
        reason: error.description_(),
    }
}
