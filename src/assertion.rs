//! Assertions: the signed JWTs (RFC 7519, JWS compact form of RFC 7515 §7.1)
//! sent to the token endpoint, as an authorization grant (RFC 7523 §2.1) or
//! as client authentication (RFC 7523 §2.2).
//!
//! [`sign`] builds an assertion from [`AssertionClaims`] with a
//! [`SigningKey`]; [`verify`] and [`decode_unverified`] read one back, for the
//! mock server and for tests. Checking the claims (`aud`, `exp`, `iat`) is
//! the caller's job: this module checks the structure, the algorithm and the
//! signature.
//!
//! # Examples
//!
//! ```
//! use service_auth::assertion::{self, AssertionClaims};
//! use service_auth::credentials::{Algorithm, SigningKey};
//!
//! let key = SigningKey::generate(Algorithm::EdDsa, "key-1")?;
//! let claims = AssertionClaims {
//!     iss: "service-user".into(),
//!     sub: "service-user".into(),
//!     aud: "https://issuer.example".into(),
//!     iat: 1_700_000_000,
//!     exp: 1_700_003_600,
//!     jti: None,
//! };
//! let signed = assertion::sign(&key, &claims)?;
//! let decoded = assertion::verify(signed.secret(), &key.public_key())?;
//! assert_eq!(decoded.audiences(), ["https://issuer.example"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use zeroize::Zeroize;

use crate::credentials::{Algorithm, KeyError, PublicKey, SigningKey};
use crate::secret::Assertion;

/// The longest assertion [`verify`] and [`decode_unverified`] accept, in
/// bytes. Real assertions are well under 4 KiB even with an 8192-bit RSA key.
pub const MAX_ASSERTION_LEN: usize = 16 * 1024;

/// The claims of an assertion (RFC 7523 §3), serialised in this field order.
///
/// For the authorization grant `iss` and `sub` are the service user's id and
/// `aud` is the issuer; for client authentication `iss` and `sub` are the
/// client id and `aud` is the token endpoint (or the issuer, per provider).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssertionClaims {
    /// Issuer: who made the assertion.
    pub iss: String,
    /// Subject: whom the assertion is about.
    pub sub: String,
    /// Audience: the one server meant to accept the assertion.
    pub aud: String,
    /// Issued at, in seconds since the Unix epoch.
    pub iat: u64,
    /// Expiry, in seconds since the Unix epoch.
    pub exp: u64,
    /// A unique id, required for client authentication (RFC 7523 §3 item 7).
    pub jti: Option<String>,
}

/// Signs `claims` with `key` into a compact JWS.
///
/// The header is `{"alg":…,"kid":…,"typ":"JWT"}`; the claims are written in
/// the fixed order `iss`, `sub`, `aud`, `iat`, `exp`, `jti`, so that the
/// same claims and key always give the same header and payload bytes (and,
/// for RS256 and EdDSA, the same signature).
///
/// # Errors
///
/// [`KeyError::SigningFailed`] when the crypto library fails.
pub fn sign(key: &SigningKey, claims: &AssertionClaims) -> Result<Assertion, KeyError> {
    let payload = claims_json(claims);
    let header = key.encoded_header();
    // Sized exactly: no reallocation leaves a copy behind, and the final
    // conversion into a boxed string does not copy either.
    let capacity = jws_len(header.len(), payload.len(), key.signature_len());
    let mut jws = String::with_capacity(capacity);
    jws.push_str(header);
    jws.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut jws);

    let mut signature = [0u8; MAX_ENCODED_SIGNATURE];
    let encoded = key.sign_with(jws.as_bytes(), |raw| {
        URL_SAFE_NO_PAD.encode_slice(raw, &mut signature)
    })?;
    // The buffer fits the signature of the largest RSA key (8192 bits).
    let encoded = encoded.map_err(|_| KeyError::SigningFailed {
        algorithm: key.algorithm(),
    })?;
    jws.push('.');
    // Base64 output is ASCII.
    jws.push_str(std::str::from_utf8(&signature[..encoded]).unwrap_or_default());
    signature[..encoded].zeroize();
    Ok(Assertion::new(jws))
}

/// The protected header of a received assertion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssertionHeader {
    /// The algorithm (`alg`, RFC 7515 §4.1.1).
    pub alg: String,
    /// The key id (`kid`, RFC 7515 §4.1.4).
    pub kid: Option<String>,
    /// The media type (`typ`, RFC 7515 §4.1.9).
    pub typ: Option<String>,
}

/// A received assertion, split into its header and claims.
///
/// Holds no signature: its `Debug` output cannot be replayed.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedAssertion {
    /// The protected header.
    pub header: AssertionHeader,
    /// All claims, as they arrived.
    pub claims: Map<String, Value>,
}

impl DecodedAssertion {
    /// The audiences: `aud` may be one string or an array of strings
    /// (RFC 7519 §4.1.3). Empty when `aud` is absent; entries that are not
    /// strings are left out.
    pub fn audiences(&self) -> Vec<&str> {
        match self.claims.get("aud") {
            Some(Value::String(audience)) => vec![audience.as_str()],
            Some(Value::Array(audiences)) => audiences.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// The `iss` claim, when it is a string.
    pub fn issuer(&self) -> Option<&str> {
        self.claims.get("iss").and_then(Value::as_str)
    }

    /// The `sub` claim, when it is a string.
    pub fn subject(&self) -> Option<&str> {
        self.claims.get("sub").and_then(Value::as_str)
    }

    /// The `jti` claim, when it is a string.
    pub fn jwt_id(&self) -> Option<&str> {
        self.claims.get("jti").and_then(Value::as_str)
    }

    /// The `iat` claim, when it is a non-negative integer.
    pub fn issued_at(&self) -> Option<u64> {
        self.claims.get("iat").and_then(Value::as_u64)
    }

    /// The `exp` claim, when it is a non-negative integer.
    pub fn expires_at(&self) -> Option<u64> {
        self.claims.get("exp").and_then(Value::as_u64)
    }

    /// The `nbf` claim, when it is a non-negative integer.
    pub fn not_before(&self) -> Option<u64> {
        self.claims.get("nbf").and_then(Value::as_u64)
    }
}

/// Decodes an assertion without checking its signature.
///
/// For logs and diagnostics of assertions whose key is unknown; never trust
/// the result.
///
/// # Errors
///
/// An [`AssertionError`] when the assertion is not three base64url segments
/// with a JSON object header (holding a string `alg`) and JSON object claims.
pub fn decode_unverified(assertion: &str) -> Result<DecodedAssertion, AssertionError> {
    let segments = split(assertion)?;
    let header = decode_header(segments.header)?;
    decode_segment(Segment::Signature, segments.signature)?;
    let claims = decode_object(Segment::Claims, segments.claims)?;
    Ok(DecodedAssertion { header, claims })
}

/// Verifies an assertion's signature under `key` and decodes it.
///
/// Checks that the assertion has three segments, that the header's `alg`
/// is the key's algorithm (`"none"` and every other value refused), that a
/// `kid`, when present, is the key's id, that no `crit` extension is asked
/// for (RFC 7515 §4.1.11), and that the signature is valid. The claims are
/// not checked: `aud`, `exp`, `iat` and `jti` are the caller's to judge.
///
/// # Errors
///
/// An [`AssertionError`] naming the first check that failed.
pub fn verify(assertion: &str, key: &PublicKey) -> Result<DecodedAssertion, AssertionError> {
    let segments = split(assertion)?;
    let header = decode_header(segments.header)?;
    check_header(&header, key)?;

    let signature = decode_segment(Segment::Signature, segments.signature)?;
    if !key.verify(segments.signing_input.as_bytes(), &signature) {
        return Err(AssertionError::BadSignature {
            key_id: key.key_id().to_owned(),
        });
    }

    let claims = decode_object(Segment::Claims, segments.claims)?;
    Ok(DecodedAssertion { header, claims })
}

/// Why a received assertion was refused. Messages never quote the assertion.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AssertionError {
    /// The assertion is longer than [`MAX_ASSERTION_LEN`].
    #[error("the assertion is {length} bytes long, more than the {max} accepted")]
    TooLong {
        /// The assertion's length.
        length: usize,
        /// The longest accepted.
        max: usize,
    },

    /// The assertion is not `header.claims.signature`.
    #[error(
        "an assertion has three dot-separated segments (header.claims.signature), this one has \
         {found}"
    )]
    SegmentCount {
        /// The number of segments found.
        found: usize,
    },

    /// A segment is not base64url without padding (RFC 7515 §2).
    #[error("the {segment} segment is not base64url without padding")]
    Base64 {
        /// The segment concerned.
        segment: Segment,
    },

    /// A segment does not hold a JSON object.
    #[error("the {segment} segment is not a JSON object ({problem})")]
    NotJsonObject {
        /// The segment concerned.
        segment: Segment,
        /// What is wrong, e.g. "syntax error at line 1, column 9".
        problem: String,
    },

    /// A header field is missing or of the wrong type.
    #[error("the header's `{field}` must be {expected}")]
    HeaderField {
        /// The field concerned.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },

    /// The header says `"alg":"none"`: the assertion is not signed.
    #[error("the assertion is unsigned (`alg` is \"none\"); only signed assertions are accepted")]
    Unsigned,

    /// The header's algorithm is not the key's.
    #[error("the assertion's `alg` is {found}, but the key verifies {expected}")]
    AlgorithmMismatch {
        /// The algorithm of the key.
        expected: Algorithm,
        /// The header's `alg` when it is a registered JOSE name, otherwise
        /// "an unrecognised value".
        found: &'static str,
    },

    /// The header's `kid` names another key.
    #[error("the assertion's `kid` does not name the key `{expected}` it was checked with")]
    KeyIdMismatch {
        /// The key id of the key.
        expected: String,
    },

    /// The header asks for critical extensions (RFC 7515 §4.1.11).
    #[error("the header lists `crit` extensions, which are not supported (RFC 7515 §4.1.11)")]
    CriticalExtension,

    /// The signature is not valid under the key.
    #[error(
        "the assertion's signature does not verify under key `{key_id}`: the assertion was \
         altered or signed with another key"
    )]
    BadSignature {
        /// The key id of the key.
        key_id: String,
    },
}

/// A segment of a compact JWS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Segment {
    /// The protected header.
    Header,
    /// The claims (the JWS payload).
    Claims,
    /// The signature.
    Signature,
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Header => "header",
            Self::Claims => "claims",
            Self::Signature => "signature",
        })
    }
}

/// Appends `value` to `out` as a JSON string (RFC 8259 §7), escaping the
/// quote, the backslash and control characters.
pub(crate) fn write_json_string(out: &mut Vec<u8>, value: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = value.as_bytes();
    let mut start = 0;
    for (index, byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1F => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xF)],
            ],
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..index]);
        out.extend_from_slice(escape);
        start = index + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// The base64url (unpadded) text of an 8192-bit RSA signature, the longest.
const MAX_ENCODED_SIGNATURE: usize = 1366;

/// The JSON claims in their fixed order.
fn claims_json(claims: &AssertionClaims) -> Vec<u8> {
    let jti_len = claims.jti.as_ref().map_or(0, |jti| jti.len() + 9);
    let capacity = 80 + claims.iss.len() + claims.sub.len() + claims.aud.len() + jti_len;
    let mut json = Vec::with_capacity(capacity);
    json.extend_from_slice(b"{\"iss\":");
    write_json_string(&mut json, &claims.iss);
    json.extend_from_slice(b",\"sub\":");
    write_json_string(&mut json, &claims.sub);
    json.extend_from_slice(b",\"aud\":");
    write_json_string(&mut json, &claims.aud);
    json.extend_from_slice(b",\"iat\":");
    write_u64(&mut json, claims.iat);
    json.extend_from_slice(b",\"exp\":");
    write_u64(&mut json, claims.exp);
    if let Some(jti) = &claims.jti {
        json.extend_from_slice(b",\"jti\":");
        write_json_string(&mut json, jti);
    }
    json.push(b'}');
    json
}

fn write_u64(out: &mut Vec<u8>, value: u64) {
    let mut digits = [0u8; 20];
    let mut rest = value;
    let mut start = digits.len();
    loop {
        start -= 1;
        // `rest % 10` is a single digit.
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// The length of a compact JWS with parts of these raw lengths.
fn jws_len(header: usize, payload: usize, signature: usize) -> usize {
    header + 1 + encoded_len(payload) + 1 + encoded_len(signature)
}

/// The length of the unpadded base64 text of `len` bytes.
fn encoded_len(len: usize) -> usize {
    (len * 4).div_ceil(3)
}

/// The segments of a compact JWS.
struct Segments<'a> {
    header: &'a str,
    claims: &'a str,
    signature: &'a str,
    /// `header.claims`, the JWS signing input (RFC 7515 §5.1).
    signing_input: &'a str,
}

fn split(assertion: &str) -> Result<Segments<'_>, AssertionError> {
    if assertion.len() > MAX_ASSERTION_LEN {
        return Err(AssertionError::TooLong {
            length: assertion.len(),
            max: MAX_ASSERTION_LEN,
        });
    }
    let found = assertion.split('.').count();
    let (Some((signing_input, signature)), 3) = (assertion.rsplit_once('.'), found) else {
        return Err(AssertionError::SegmentCount { found });
    };
    let Some((header, claims)) = signing_input.split_once('.') else {
        return Err(AssertionError::SegmentCount { found });
    };
    Ok(Segments {
        header,
        claims,
        signature,
        signing_input,
    })
}

fn decode_segment(segment: Segment, text: &str) -> Result<Vec<u8>, AssertionError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| AssertionError::Base64 { segment })
}

fn decode_object(segment: Segment, text: &str) -> Result<Map<String, Value>, AssertionError> {
    let bytes = decode_segment(segment, text)?;
    // serde_json's messages can quote the input: keep its position only.
    serde_json::from_slice(&bytes).map_err(|error| AssertionError::NotJsonObject {
        segment,
        problem: format!(
            "{} error at line {}, column {}",
            crate::credentials::json_category(&error),
            error.line(),
            error.column()
        ),
    })
}

fn decode_header(text: &str) -> Result<AssertionHeader, AssertionError> {
    let mut header = decode_object(Segment::Header, text)?;
    if header.contains_key("crit") {
        return Err(AssertionError::CriticalExtension);
    }
    let Some(Value::String(alg)) = header.remove("alg") else {
        return Err(AssertionError::HeaderField {
            field: "alg",
            expected: "a string",
        });
    };
    Ok(AssertionHeader {
        alg,
        kid: optional_string(&mut header, "kid")?,
        typ: optional_string(&mut header, "typ")?,
    })
}

fn optional_string(
    header: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, AssertionError> {
    match header.remove(field) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(AssertionError::HeaderField {
            field,
            expected: "a string when present",
        }),
    }
}

fn check_header(header: &AssertionHeader, key: &PublicKey) -> Result<(), AssertionError> {
    if header.alg.eq_ignore_ascii_case("none") {
        return Err(AssertionError::Unsigned);
    }
    if Algorithm::from_jose(&header.alg) != Some(key.algorithm()) {
        return Err(AssertionError::AlgorithmMismatch {
            expected: key.algorithm(),
            found: registered_algorithm(&header.alg),
        });
    }
    match &header.kid {
        Some(kid) if kid != key.key_id() => Err(AssertionError::KeyIdMismatch {
            expected: key.key_id().to_owned(),
        }),
        _ => Ok(()),
    }
}

/// The registered JOSE name equal to `alg` (RFC 7518 §3.1, RFC 8037 §3.1,
/// RFC 8812 §3.2), so that an error can name it without quoting token text.
fn registered_algorithm(alg: &str) -> &'static str {
    const NAMES: &[&str] = &[
        "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256",
        "PS384", "PS512", "EdDSA", "ES256K", "Ed25519", "Ed448",
    ];
    NAMES
        .iter()
        .find(|name| **name == alg)
        .copied()
        .unwrap_or("an unrecognised value")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ALGORITHMS: [Algorithm; 3] = [Algorithm::Rs256, Algorithm::Es256, Algorithm::EdDsa];

    fn claims() -> AssertionClaims {
        AssertionClaims {
            iss: "user-1".into(),
            sub: "user-1".into(),
            aud: "https://issuer.example".into(),
            iat: 1_700_000_000,
            exp: 1_700_003_600,
            jti: Some("id-1".into()),
        }
    }

    fn segment(assertion: &str, index: usize) -> Vec<u8> {
        let text = assertion.split('.').nth(index).unwrap();
        URL_SAFE_NO_PAD.decode(text).unwrap()
    }

    /// An assertion with `header` and `claims` as given, signed by `key`.
    fn forge(key: &SigningKey, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = key.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    fn header_of(key: &SigningKey) -> Value {
        json!({"alg": key.algorithm().as_str(), "kid": key.key_id(), "typ": "JWT"})
    }

    /// Checks the house rules for a message and that it quotes no token.
    fn message(error: &AssertionError, token: &str) -> String {
        let text = error.to_string();
        assert!(text.starts_with(|c: char| !c.is_uppercase()), "{text}");
        assert!(!text.ends_with('.'), "{text}");
        for part in token.split('.').filter(|part| part.len() >= 8) {
            for window in part.as_bytes().windows(8) {
                let window = std::str::from_utf8(window).unwrap();
                assert!(!text.contains(window), "token text in {text:?}");
            }
        }
        text
    }

    #[test]
    fn signs_and_verifies_with_each_algorithm() {
        for algorithm in ALGORITHMS {
            let key = SigningKey::generate(algorithm, "kid-1").unwrap();
            let signed = sign(&key, &claims()).unwrap();
            let decoded = verify(signed.secret(), &key.public_key()).unwrap();

            let header = &decoded.header;
            assert_eq!(header.alg, algorithm.as_str());
            assert_eq!(header.kid.as_deref(), Some("kid-1"));
            assert_eq!(header.typ.as_deref(), Some("JWT"));

            assert_eq!(decoded.issuer(), Some("user-1"));
            assert_eq!(decoded.subject(), Some("user-1"));
            assert_eq!(decoded.audiences(), ["https://issuer.example"]);
            assert_eq!(decoded.issued_at(), Some(1_700_000_000));
            assert_eq!(decoded.expires_at(), Some(1_700_003_600));
            assert_eq!(decoded.jwt_id(), Some("id-1"));
            assert_eq!(decoded.not_before(), None);
            assert_eq!(decoded.claims.len(), 6);

            let signature = segment(signed.secret(), 2);
            assert_eq!(signature.len(), key.signature_len());
            let header_len = key.encoded_header().len();
            let payload_len = segment(signed.secret(), 1).len();
            let expected_len = jws_len(header_len, payload_len, signature.len());
            assert_eq!(signed.secret().len(), expected_len);
            assert_eq!(decode_unverified(signed.secret()).unwrap(), decoded);
        }
    }

    #[test]
    fn es256_assertions_carry_a_64_byte_signature() {
        let key = SigningKey::generate(Algorithm::Es256, "kid").unwrap();
        let signed = sign(&key, &claims()).unwrap();
        assert_eq!(segment(signed.secret(), 2).len(), 64);
    }

    #[test]
    fn header_and_claims_bytes_are_fixed() {
        let key = SigningKey::generate(Algorithm::EdDsa, "kid-1").unwrap();
        let signed = sign(&key, &claims()).unwrap();
        assert_eq!(
            segment(signed.secret(), 0),
            br#"{"alg":"EdDSA","kid":"kid-1","typ":"JWT"}"#
        );
        let expected = concat!(
            r#"{"iss":"user-1","sub":"user-1","aud":"https://issuer.example","#,
            r#""iat":1700000000,"exp":1700003600,"jti":"id-1"}"#
        );
        assert_eq!(segment(signed.secret(), 1), expected.as_bytes());

        // Ed25519 and RSA PKCS#1 v1.5 are deterministic: the whole
        // assertion is byte-stable.
        for algorithm in [Algorithm::EdDsa, Algorithm::Rs256] {
            let key = SigningKey::generate(algorithm, "kid-1").unwrap();
            let first = sign(&key, &claims()).unwrap();
            let second = sign(&key, &claims()).unwrap();
            assert_eq!(first.secret(), second.secret());
        }
    }

    #[test]
    fn leaves_out_a_missing_jti() {
        let key = SigningKey::generate(Algorithm::EdDsa, "kid").unwrap();
        let claims = AssertionClaims {
            jti: None,
            ..claims()
        };
        let signed = sign(&key, &claims).unwrap();
        let decoded = decode_unverified(signed.secret()).unwrap();
        assert!(!decoded.claims.contains_key("jti"));
        assert_eq!(decoded.claims.len(), 5);
    }

    #[test]
    fn escapes_strings_as_json_does() {
        let odd = "quote \" backslash \\ newline \n tab \t nul \0 bell \u{7} é 🦀 </script>";
        let key = SigningKey::generate(Algorithm::EdDsa, odd).unwrap();
        let claims = AssertionClaims {
            iss: odd.into(),
            sub: odd.into(),
            aud: odd.into(),
            iat: 0,
            exp: u64::MAX,
            jti: Some(odd.into()),
        };
        let signed = sign(&key, &claims).unwrap();
        let decoded = verify(signed.secret(), &key.public_key()).unwrap();
        assert_eq!(decoded.header.kid.as_deref(), Some(odd));
        for name in ["iss", "sub", "aud", "jti"] {
            assert_eq!(decoded.claims[name], odd);
        }
        assert_eq!(decoded.issued_at(), Some(0));
        assert_eq!(decoded.expires_at(), Some(u64::MAX));

        let mut ours = Vec::new();
        write_json_string(&mut ours, odd);
        let theirs = serde_json::to_vec(odd).unwrap();
        assert_eq!(
            serde_json::from_slice::<String>(&ours).unwrap(),
            serde_json::from_slice::<String>(&theirs).unwrap()
        );
    }

    #[test]
    fn refuses_tampered_assertions() {
        let key = SigningKey::generate(Algorithm::Es256, "kid").unwrap();
        let signed = sign(&key, &claims()).unwrap();
        let token = signed.secret();
        let (input, signature) = token.rsplit_once('.').unwrap();

        let mut raw = URL_SAFE_NO_PAD.decode(signature).unwrap();
        raw[0] ^= 1;
        let tampered = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&raw));
        let error = verify(&tampered, &key.public_key()).unwrap_err();
        assert_eq!(
            error,
            AssertionError::BadSignature {
                key_id: "kid".into()
            }
        );
        message(&error, &tampered);

        let other_claims = AssertionClaims {
            sub: "someone-else".into(),
            ..claims()
        };
        let other = sign(&key, &other_claims).unwrap();
        let other_payload = other.secret().split('.').nth(1).unwrap();
        let header = token.split('.').next().unwrap();
        let spliced = format!("{header}.{other_payload}.{signature}");
        assert!(matches!(
            verify(&spliced, &key.public_key()),
            Err(AssertionError::BadSignature { .. })
        ));
    }

    #[test]
    fn refuses_another_key_of_the_same_algorithm() {
        for algorithm in ALGORITHMS {
            let key = SigningKey::generate(algorithm, "kid").unwrap();
            let other = SigningKey::generate(algorithm, "kid").unwrap();
            let signed = sign(&key, &claims()).unwrap();
            let error = verify(signed.secret(), &other.public_key()).unwrap_err();
            assert!(
                matches!(error, AssertionError::BadSignature { .. }),
                "{error:?}"
            );
        }
    }

    #[test]
    fn refuses_unsigned_assertions() {
        let key = SigningKey::generate(Algorithm::Rs256, "kid").unwrap();
        let claims = json!({"iss": "a", "sub": "a", "aud": "b", "iat": 1, "exp": 2});
        for alg in ["none", "None", "NONE"] {
            let header = URL_SAFE_NO_PAD.encode(json!({"alg": alg}).to_string());
            let body = URL_SAFE_NO_PAD.encode(claims.to_string());
            for token in [format!("{header}.{body}."), format!("{header}.{body}.c2ln")] {
                let error = verify(&token, &key.public_key()).unwrap_err();
                assert_eq!(error, AssertionError::Unsigned);
                message(&error, &token);
            }
        }
    }

    #[test]
    fn refuses_an_algorithm_other_than_the_keys() {
        let rsa = SigningKey::generate(Algorithm::Rs256, "kid").unwrap();
        let ec = SigningKey::generate(Algorithm::Es256, "kid").unwrap();
        let signed = sign(&ec, &claims()).unwrap();
        let error = verify(signed.secret(), &rsa.public_key()).unwrap_err();
        assert_eq!(
            error,
            AssertionError::AlgorithmMismatch {
                expected: Algorithm::Rs256,
                found: "ES256"
            }
        );
        assert!(message(&error, signed.secret()).contains("ES256"));

        // An HMAC header over an RSA key (the classic confusion attack).
        let token = forge(&rsa, &json!({"alg": "HS256", "kid": "kid"}), &json!({}));
        let error = verify(&token, &rsa.public_key()).unwrap_err();
        assert_eq!(
            error,
            AssertionError::AlgorithmMismatch {
                expected: Algorithm::Rs256,
                found: "HS256"
            }
        );
        let token = forge(&rsa, &json!({"alg": "x-secret-alg"}), &json!({}));
        let error = verify(&token, &rsa.public_key()).unwrap_err();
        assert!(message(&error, &token).contains("an unrecognised value"));
    }

    #[test]
    fn refuses_a_kid_of_another_key() {
        let key = SigningKey::generate(Algorithm::EdDsa, "kid-1").unwrap();
        let header = json!({"alg": "EdDSA", "kid": "kid-2"});
        let token = forge(&key, &header, &json!({}));
        let error = verify(&token, &key.public_key()).unwrap_err();
        assert_eq!(
            error,
            AssertionError::KeyIdMismatch {
                expected: "kid-1".into()
            }
        );
        message(&error, &token);

        // Without a `kid` the key given is the one to check with.
        let token = forge(&key, &json!({"alg": "EdDSA"}), &json!({"aud": "x"}));
        let decoded = verify(&token, &key.public_key()).unwrap();
        assert_eq!((decoded.header.kid, decoded.header.typ), (None, None));
    }

    #[test]
    fn refuses_critical_extensions() {
        let key = SigningKey::generate(Algorithm::EdDsa, "kid").unwrap();
        let mut header = header_of(&key);
        header["crit"] = json!(["exp"]);
        let token = forge(&key, &header, &json!({}));
        assert_eq!(
            verify(&token, &key.public_key()).unwrap_err(),
            AssertionError::CriticalExtension
        );
    }

    #[test]
    fn refuses_malformed_structure() {
        let key = SigningKey::generate(Algorithm::EdDsa, "kid").unwrap();
        let public = key.public_key();
        let good = sign(&key, &claims()).unwrap();
        let parts: Vec<&str> = good.secret().split('.').collect();

        let cases = [
            ("".to_owned(), AssertionError::SegmentCount { found: 1 }),
            (
                parts[..2].join("."),
                AssertionError::SegmentCount { found: 2 },
            ),
            (
                format!("{}.x", good.secret()),
                AssertionError::SegmentCount { found: 4 },
            ),
            (
                format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
                AssertionError::Base64 {
                    segment: Segment::Header,
                },
            ),
            (
                format!("{}.{}.{}+", parts[0], parts[1], parts[2]),
                AssertionError::Base64 {
                    segment: Segment::Signature,
                },
            ),
            (
                format!("{}.{}", "a".repeat(MAX_ASSERTION_LEN), parts[1]),
                AssertionError::TooLong {
                    length: MAX_ASSERTION_LEN + 1 + parts[1].len(),
                    max: MAX_ASSERTION_LEN,
                },
            ),
        ];
        for (token, expected) in cases {
            assert_eq!(verify(&token, &public).unwrap_err(), expected);
            assert_eq!(decode_unverified(&token).unwrap_err(), expected);
            message(&expected, &token);
        }
    }

    #[test]
    fn refuses_headers_and_claims_that_are_not_objects() {
        let key = SigningKey::generate(Algorithm::EdDsa, "kid").unwrap();
        let public = key.public_key();

        let token = forge(&key, &json!(["EdDSA"]), &json!({}));
        let error = verify(&token, &public).unwrap_err();
        assert!(
            matches!(
                error,
                AssertionError::NotJsonObject {
                    segment: Segment::Header,
                    ..
                }
            ),
            "{error:?}"
        );
        message(&error, &token);

        let token = forge(&key, &header_of(&key), &json!("secret-claims"));
        let error = verify(&token, &public).unwrap_err();
        assert!(
            matches!(
                error,
                AssertionError::NotJsonObject {
                    segment: Segment::Claims,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(!message(&error, &token).contains("secret-claims"));

        let header = URL_SAFE_NO_PAD.encode("{\"alg\":\"EdDSA\",");
        let error = decode_unverified(&format!("{header}.e30.")).unwrap_err();
        assert!(message(&error, "").contains("end of input error at line 1"));

        for (header, field) in [
            (json!({"typ": "JWT"}), "alg"),
            (json!({"alg": 1}), "alg"),
            (json!({"alg": "EdDSA", "kid": 5}), "kid"),
            (json!({"alg": "EdDSA", "typ": null}), "typ"),
        ] {
            let token = forge(&key, &header, &json!({}));
            let error = verify(&token, &public).unwrap_err();
            assert!(
                matches!(error, AssertionError::HeaderField { field: found, .. } if found == field),
                "{error:?}"
            );
            message(&error, &token);
        }
    }

    #[test]
    fn audiences_may_be_a_string_or_an_array() {
        let decoded = |claims: Value| DecodedAssertion {
            header: AssertionHeader {
                alg: "EdDSA".into(),
                kid: None,
                typ: None,
            },
            claims: claims.as_object().unwrap().clone(),
        };
        assert_eq!(decoded(json!({"aud": "a"})).audiences(), ["a"]);
        assert_eq!(
            decoded(json!({"aud": ["a", 1, "b"]})).audiences(),
            ["a", "b"]
        );
        assert!(decoded(json!({})).audiences().is_empty());
        assert!(decoded(json!({"aud": 3})).audiences().is_empty());
        assert_eq!(decoded(json!({"iat": -1})).issued_at(), None);
    }

    #[test]
    fn writes_numbers_in_decimal() {
        for value in [0, 7, 10, 1_700_000_000, u64::MAX] {
            let mut out = Vec::new();
            write_u64(&mut out, value);
            assert_eq!(out, value.to_string().as_bytes());
        }
    }

    #[test]
    fn decoded_debug_holds_no_signature() {
        let key = SigningKey::generate(Algorithm::EdDsa, "kid").unwrap();
        let signed = sign(&key, &claims()).unwrap();
        let signature = signed.secret().rsplit_once('.').unwrap().1;
        let decoded = verify(signed.secret(), &key.public_key()).unwrap();
        assert!(!format!("{decoded:?}").contains(signature));
        assert_eq!(format!("{signed:?}"), "Assertion(<redacted>)");
    }

    mod no_panics {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn decoding_any_text(text in "[A-Za-z0-9_.=+/-]{0,300}", junk in ".{0,100}") {
                let key = SigningKey::generate(Algorithm::EdDsa, "kid").unwrap().public_key();
                for text in [text, junk] {
                    let _ = decode_unverified(&text);
                    let _ = verify(&text, &key);
                }
            }

            #[test]
            fn verifying_altered_assertions(index in any::<prop::sample::Index>(), byte in 0x21u8..0x7F) {
                let key = SigningKey::generate(Algorithm::Es256, "kid").unwrap();
                let signed = sign(&key, &claims()).unwrap();
                let mut bytes = signed.secret().as_bytes().to_vec();
                let index = index.index(bytes.len());
                let changed = bytes[index] != byte;
                bytes[index] = byte;
                let text = String::from_utf8(bytes).unwrap();
                // The signature covers every byte of header and claims, and
                // base64url has one spelling per value (no padding, no
                // stray trailing bits): any change must be refused.
                prop_assert!(!changed || verify(&text, &key.public_key()).is_err());
            }
        }
    }
}
