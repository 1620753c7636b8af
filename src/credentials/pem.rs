//! Reading private keys from PEM and DER: PKCS#8 (RFC 5208, RFC 5958),
//! PKCS#1 (RFC 8017 appendix A.1.2) and SEC1 (RFC 5915), and writing them
//! back as PEM (RFC 7468).

use aws_lc_rs::encoding::{AsDer, EcPrivateKeyRfc5915Der};
use aws_lc_rs::error::KeyRejected;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls_pki_types::pem::{self, PemObject, SectionKind};
use zeroize::Zeroizing;

use super::der::{self, Reader};
use super::error::safe_label;
use super::signing::Pair;
use super::{KeyError, KeyFormat, KeyType, SigningKey};

/// `rsaEncryption`, 1.2.840.113549.1.1.1 (RFC 8017 appendix A.1).
const OID_RSA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
/// `id-RSASSA-PSS`, 1.2.840.113549.1.1.10 (RFC 8017 appendix A.2.3).
const OID_RSA_PSS: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0A];
/// `id-ecPublicKey`, 1.2.840.10045.2.1 (RFC 5480 §2.1.1).
const OID_EC: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
/// `secp256r1`, 1.2.840.10045.3.1.7 (RFC 5480 §2.1.1.1).
const OID_P256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
/// `id-Ed25519`, 1.3.101.112 (RFC 8410 §3).
const OID_ED25519: &[u8] = &[0x2B, 0x65, 0x70];

/// The smallest and largest RSA moduli the crypto library signs with.
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

impl SigningKey {
    /// Reads a private key from PEM: `PRIVATE KEY` (PKCS#8 with RSA, P-256 or
    /// Ed25519), `RSA PRIVATE KEY` (PKCS#1) or `EC PRIVATE KEY` (SEC1, P-256).
    ///
    /// Other sections (certificates, for instance) before or after the key
    /// are skipped. `key_id` is the key id the provider registered the
    /// public key under.
    ///
    /// The PEM parser keeps the key's base64 text in a buffer of its own that
    /// is freed without being wiped; the decoded DER is wiped.
    ///
    /// # Errors
    ///
    /// A [`KeyError`] naming the problem: no PEM, a certificate or public
    /// key instead of a private key, an encrypted key, an unsupported key
    /// type, malformed DER, or an empty key id.
    ///
    /// # Examples
    ///
    /// ```
    /// use service_auth::credentials::{Algorithm, SigningKey};
    ///
    /// let pem = SigningKey::generate(Algorithm::EdDsa, "k")?.to_pkcs8_pem()?;
    /// let key = SigningKey::from_pem(&pem, "key-1")?;
    /// assert_eq!(key.algorithm(), Algorithm::EdDsa);
    /// # Ok::<(), service_auth::credentials::KeyError>(())
    /// ```
    pub fn from_pem(pem: &str, key_id: impl Into<String>) -> Result<Self, KeyError> {
        let (kind, der) = private_key_section(pem)?;
        match kind {
            SectionKind::RsaPrivateKey => Self::from_der_pkcs1(&der, key_id),
            SectionKind::EcPrivateKey => Self::from_der_sec1(&der, key_id),
            _ => Self::from_der_pkcs8(&der, key_id),
        }
    }

    /// Reads a private key from PKCS#8 DER (RFC 5208 `PrivateKeyInfo` or
    /// RFC 5958 `OneAsymmetricKey`) holding an RSA, P-256 or Ed25519 key.
    ///
    /// # Errors
    ///
    /// [`KeyError::MalformedDer`], [`KeyError::UnsupportedKeyType`],
    /// [`KeyError::InvalidKey`] or [`KeyError::EmptyKeyId`].
    pub fn from_der_pkcs8(der: &[u8], key_id: impl Into<String>) -> Result<Self, KeyError> {
        let malformed = |problem| KeyError::MalformedDer {
            format: KeyFormat::Pkcs8,
            problem,
        };
        let pkcs8 = read_pkcs8(der).map_err(malformed)?;
        let pair = match pkcs8.algorithm {
            OID_RSA => {
                check_rsa_size(pkcs8.private_key, KeyFormat::Pkcs8)?;
                Pair::Rsa(RsaKeyPair::from_pkcs8(der).map_err(rejected(KeyType::Rsa))?)
            }
            OID_EC => {
                check_curve(pkcs8.parameters)?;
                let ec = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
                let pair = EcdsaKeyPair::from_pkcs8(ec, der);
                Pair::Ec(pair.map_err(rejected(KeyType::EcP256))?)
            }
            OID_ED25519 => {
                let pair = Ed25519KeyPair::from_pkcs8(der);
                Pair::Ed(pair.map_err(rejected(KeyType::Ed25519))?)
            }
            other => return Err(unsupported_algorithm(other)),
        };
        Self::new(pair, key_id.into())
    }

    /// Reads an RSA private key from PKCS#1 DER (`RSAPrivateKey`, RFC 8017
    /// appendix A.1.2), the form ZITADEL key files hold.
    ///
    /// # Errors
    ///
    /// [`KeyError::MalformedDer`], [`KeyError::UnsupportedKeyType`] (a
    /// modulus outside 2048 to 8192 bits), [`KeyError::InvalidKey`] or
    /// [`KeyError::EmptyKeyId`].
    pub fn from_der_pkcs1(der: &[u8], key_id: impl Into<String>) -> Result<Self, KeyError> {
        check_rsa_size(der, KeyFormat::Pkcs1)?;
        let pair = RsaKeyPair::from_der(der).map_err(rejected(KeyType::Rsa))?;
        Self::new(Pair::Rsa(pair), key_id.into())
    }

    /// Reads a P-256 private key from SEC1 DER (`ECPrivateKey`, RFC 5915).
    ///
    /// # Errors
    ///
    /// [`KeyError::MalformedDer`], [`KeyError::UnsupportedKeyType`] (another
    /// curve), [`KeyError::InvalidKey`] or [`KeyError::EmptyKeyId`].
    pub fn from_der_sec1(der: &[u8], key_id: impl Into<String>) -> Result<Self, KeyError> {
        let curve = read_sec1_curve(der).map_err(|problem| KeyError::MalformedDer {
            format: KeyFormat::Sec1,
            problem,
        })?;
        // The curve may be left out when it is known from elsewhere
        // (RFC 5915 §3); P-256 is then the only curve it can be for us.
        check_curve(curve)?;
        let ec = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pair = EcdsaKeyPair::from_private_key_der(ec, der);
        Self::new(
            Pair::Ec(pair.map_err(rejected(KeyType::EcP256))?),
            key_id.into(),
        )
    }

    /// Encodes the key as PEM in the form key files conventionally use for
    /// its type: PKCS#1 `RSA PRIVATE KEY` for RSA (as ZITADEL writes it),
    /// SEC1 `EC PRIVATE KEY` for P-256 and PKCS#8 `PRIVATE KEY` for Ed25519.
    ///
    /// # Errors
    ///
    /// [`KeyError::EncodingFailed`] when the crypto library fails.
    pub fn to_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        match self.pair() {
            Pair::Rsa(_) => {
                let pkcs8 = self.to_pkcs8_der()?;
                let pkcs1 = read_pkcs8(&pkcs8)
                    .map(|parts| parts.private_key)
                    .map_err(|_| KeyError::EncodingFailed {
                        key_type: KeyType::Rsa,
                        format: KeyFormat::Pkcs1,
                    })?;
                Ok(encode("RSA PRIVATE KEY", pkcs1))
            }
            Pair::Ec(pair) => {
                let sec1: Result<EcPrivateKeyRfc5915Der<'static>, _> = pair.private_key().as_der();
                let sec1 = sec1.map_err(|_| KeyError::EncodingFailed {
                    key_type: KeyType::EcP256,
                    format: KeyFormat::Sec1,
                })?;
                Ok(encode("EC PRIVATE KEY", sec1.as_ref()))
            }
            Pair::Ed(_) => self.to_pkcs8_pem(),
        }
    }
}

/// Encodes `der` as a PEM section with `label` (RFC 7468 §2) into a string
/// wiped on drop.
pub(super) fn encode(label: &str, der: &[u8]) -> Zeroizing<String> {
    let mut pem = Zeroizing::new(String::new());
    encode_into(label, der, &mut pem);
    pem
}

/// Encodes `der` as a PEM section with `label`, lines of 64 characters,
/// into `pem`, reserving the whole length up front so that no copy is left
/// behind by reallocation.
pub(super) fn encode_into(label: &str, der: &[u8], pem: &mut String) {
    let body = der.len().div_ceil(3) * 4;
    let lines = body.div_ceil(64);
    pem.reserve_exact(2 * (label.len() + 17) + body + lines);
    pem.push_str("-----BEGIN ");
    pem.push_str(label);
    pem.push_str("-----\n");
    // 48 bytes encode to exactly one 64-character line.
    for chunk in der.chunks(48) {
        STANDARD.encode_string(chunk, pem);
        pem.push('\n');
    }
    pem.push_str("-----END ");
    pem.push_str(label);
    pem.push_str("-----\n");
}

/// Finds the first private key section in `text` and decodes it.
fn private_key_section(text: &str) -> Result<(SectionKind, Zeroizing<Vec<u8>>), KeyError> {
    // Passphrase-protected keys: PKCS#8 `ENCRYPTED PRIVATE KEY`, or a
    // traditional section with RFC 1421 `Proc-Type` headers.
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
    {
        return Err(KeyError::EncryptedKey);
    }

    let mut other = None;
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(text.as_bytes()) {
        let (kind, der) = section.map_err(pem_error)?;
        let der = Zeroizing::new(der);
        match kind {
            SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey => {
                return Ok((kind, der));
            }
            _ => other = other.or(Some(kind)),
        }
    }

    if let Some(kind) = other {
        return Err(KeyError::NotAPrivateKey {
            found: section_name(kind),
        });
    }
    match first_label(text) {
        Some(label) => Err(KeyError::UnsupportedPemLabel {
            label: safe_label(label),
        }),
        None => Err(KeyError::NoPem),
    }
}

/// Maps the PEM parser's error to ours, keeping none of its text (which can
/// quote a line of the key).
fn pem_error(error: pem::Error) -> KeyError {
    let problem = match error {
        pem::Error::MissingSectionEnd { .. } => "a section has no END line",
        pem::Error::IllegalSectionStart { .. } => "a BEGIN line is malformed",
        pem::Error::Base64Decode(_) => "the base64 body is invalid",
        pem::Error::SectionTooLarge => "a section is too large",
        _ => "the text cannot be read as PEM",
    };
    KeyError::MalformedPem { problem }
}

fn section_name(kind: SectionKind) -> &'static str {
    match kind {
        SectionKind::Certificate => "certificate",
        SectionKind::PublicKey => "public key",
        SectionKind::Crl => "certificate revocation list",
        SectionKind::Csr => "certificate signing request",
        _ => "section of another kind",
    }
}

/// The label of the first `-----BEGIN …-----` line, if there is one.
fn first_label(text: &str) -> Option<&str> {
    let start = text.find("-----BEGIN ")? + "-----BEGIN ".len();
    let rest = &text[start..];
    let end = rest.find("-----")?;
    Some(&rest[..end])
}

/// The parts of a PKCS#8 structure this library looks at.
struct Pkcs8<'a> {
    /// The algorithm's OBJECT IDENTIFIER contents.
    algorithm: &'a [u8],
    /// The algorithm parameters when they are an OID (the curve of EC keys).
    parameters: Option<&'a [u8]>,
    /// The private key octets (a PKCS#1 structure for RSA).
    private_key: &'a [u8],
}

/// Reads a PKCS#8 structure (RFC 5958 §2).
fn read_pkcs8(der: &[u8]) -> Result<Pkcs8<'_>, &'static str> {
    let mut outer = Reader::new(der);
    let mut info = Reader::new(outer.read(der::SEQUENCE)?);
    if !outer.is_empty() {
        return Err("data follows the key");
    }
    info.read(der::INTEGER)?;

    let mut algorithm = Reader::new(info.read(der::SEQUENCE)?);
    let oid = algorithm.read(der::OID)?;
    let parameters = match algorithm.peek_tag() {
        Some(der::OID) => Some(algorithm.read(der::OID)?),
        _ => None,
    };

    let private_key = info.read(der::OCTET_STRING)?;
    Ok(Pkcs8 {
        algorithm: oid,
        parameters,
        private_key,
    })
}

/// Reads the curve OID of a SEC1 `ECPrivateKey` (RFC 5915 §3), if present.
fn read_sec1_curve(der: &[u8]) -> Result<Option<&[u8]>, &'static str> {
    let mut outer = Reader::new(der);
    let mut key = Reader::new(outer.read(der::SEQUENCE)?);
    if key.read(der::INTEGER)? != [1] {
        return Err("the version is not 1");
    }
    key.read(der::OCTET_STRING)?;
    if key.peek_tag() != Some(der::CONTEXT_0) {
        return Ok(None);
    }
    let mut parameters = Reader::new(key.read(der::CONTEXT_0)?);
    Ok(Some(parameters.read(der::OID)?))
}

/// Refuses RSA keys the crypto library would refuse for their size, with an
/// error that names the size.
fn check_rsa_size(pkcs1: &[u8], format: KeyFormat) -> Result<(), KeyError> {
    let modulus_bits = || -> Result<usize, &'static str> {
        let mut outer = Reader::new(pkcs1);
        let mut key = Reader::new(outer.read(der::SEQUENCE)?);
        key.read(der::INTEGER)?;
        Ok(der::integer_bits(key.read(der::INTEGER)?))
    };
    let bits = modulus_bits().map_err(|problem| KeyError::MalformedDer { format, problem })?;
    if RSA_BITS.contains(&bits) {
        return Ok(());
    }
    Err(KeyError::UnsupportedKeyType {
        found: format!("RSA with a {bits}-bit modulus"),
    })
}

/// Refuses every curve but P-256, naming the curve found.
fn check_curve(curve: Option<&[u8]>) -> Result<(), KeyError> {
    let Some(curve) = curve else {
        return Ok(());
    };
    if curve == OID_P256 {
        return Ok(());
    }
    let name = match curve {
        [0x2B, 0x81, 0x04, 0x00, 0x22] => "P-384".to_owned(),
        [0x2B, 0x81, 0x04, 0x00, 0x23] => "P-521".to_owned(),
        [0x2B, 0x81, 0x04, 0x00, 0x0A] => "secp256k1".to_owned(),
        other => format!("with curve {}", der::oid_to_string(other)),
    };
    Err(KeyError::UnsupportedKeyType {
        found: format!("EC {name}"),
    })
}

fn unsupported_algorithm(oid: &[u8]) -> KeyError {
    let found = match oid {
        OID_RSA_PSS => "RSA-PSS (RSASSA-PSS key)".to_owned(),
        [0x2B, 0x65, 0x71] => "Ed448".to_owned(),
        [0x2B, 0x65, 0x6E] => "X25519".to_owned(),
        [0x2B, 0x65, 0x6F] => "X448".to_owned(),
        [0x2A, 0x86, 0x48, 0xCE, 0x38, 0x04, 0x01] => "DSA".to_owned(),
        other => format!("with algorithm {}", der::oid_to_string(other)),
    };
    KeyError::UnsupportedKeyType { found }
}

fn rejected(key_type: KeyType) -> impl Fn(KeyRejected) -> KeyError {
    move |error| KeyError::InvalidKey {
        key_type,
        reason: error.description_(),
    }
}
