//! The error of reading, converting or using a key.

use std::io;
use std::path::PathBuf;

use super::{Algorithm, KeyFormat, KeyType};

/// Why a key could not be read or used.
///
/// Never contains key material: only the kind of problem, the field or
/// format concerned, paths and small labels (a PEM section name, a key file
/// `type`) cut to a safe length.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key id is the empty string.
    #[error("the key id is empty: pass the key id the provider registered for this key")]
    EmptyKeyId,

    /// The text holds no PEM section at all.
    #[error(
        "no PEM section found: expected text between `-----BEGIN PRIVATE KEY-----` (or \
         `RSA PRIVATE KEY`, `EC PRIVATE KEY`) and the matching END line"
    )]
    NoPem,

    /// A PEM section is broken.
    #[error(
        "malformed PEM: {problem}; check that the key was copied completely, including the \
         BEGIN and END lines"
    )]
    MalformedPem {
        /// What is wrong, e.g. "the base64 body is invalid".
        problem: &'static str,
    },

    /// The PEM holds something other than a private key.
    #[error(
        "the PEM holds a {found}, not a private key: give the private key (`-----BEGIN PRIVATE \
         KEY-----`) instead"
    )]
    NotAPrivateKey {
        /// What was found: "certificate", "public key", ….
        found: &'static str,
    },

    /// The private key is protected by a passphrase.
    #[error(
        "the private key is encrypted, which is not supported: decrypt it with `openssl pkcs8 \
         -topk8 -nocrypt -in <encrypted> -out <plain>` and keep the result readable only by \
         this service"
    )]
    EncryptedKey,

    /// The PEM section has a label that holds no supported key format.
    #[error(
        "unsupported PEM section `{label}`: expected PRIVATE KEY (PKCS#8), RSA PRIVATE KEY \
         (PKCS#1) or EC PRIVATE KEY (SEC1); convert with `openssl pkcs8 -topk8 -nocrypt`"
    )]
    UnsupportedPemLabel {
        /// The section label, e.g. "OPENSSH PRIVATE KEY".
        label: String,
    },

    /// The DER structure inside the PEM (or given directly) is malformed.
    #[error(
        "the {format} private key is not valid DER ({problem}): check that the key is not \
         truncated or corrupted"
    )]
    MalformedDer {
        /// The format the bytes were read as.
        format: KeyFormat,
        /// What is wrong.
        problem: &'static str,
    },

    /// The key is of a type or size this library does not sign with.
    #[error(
        "unsupported key type {found}: use an RSA key of 2048 to 8192 bits, an EC key on \
         P-256 or an Ed25519 key"
    )]
    UnsupportedKeyType {
        /// The key type found, e.g. "EC P-384" or "RSA with a 1024-bit modulus".
        found: String,
    },

    /// The crypto library rejected the key.
    #[error(
        "the {key_type} key was rejected as invalid or inconsistent ({reason}): re-export or \
         regenerate the key"
    )]
    InvalidKey {
        /// The type of the key.
        key_type: KeyType,
        /// The crypto library's reason, e.g. "InconsistentComponents".
        reason: &'static str,
    },

    /// An algorithm was asked for that the key cannot sign with.
    #[error(
        "algorithm `{requested}` does not fit this {key_type} key: {key_type} keys sign with \
         {expected}; drop the algorithm or use a matching key"
    )]
    AlgorithmMismatch {
        /// The algorithm asked for (a JOSE `alg` name, cut to a safe length).
        requested: String,
        /// The type of the key.
        key_type: KeyType,
        /// The algorithm the key signs with.
        expected: Algorithm,
    },

    /// A JWK lacks a field or has a field of the wrong form.
    #[error("malformed JWK: `{field}` must be {expected}")]
    MalformedJwk {
        /// The JWK member concerned, e.g. "kid" or "d".
        field: &'static str,
        /// What the member must be.
        expected: &'static str,
    },

    /// A JSON document (JWK or key file) does not parse.
    #[error(
        "the {document} is not valid JSON ({category} error at line {line}, column {column}): \
         check that the whole file was copied"
    )]
    InvalidJson {
        /// Which document: "JWK" or "key file".
        document: &'static str,
        /// The kind of JSON error: "syntax", "data", "end of input".
        category: &'static str,
        /// The line of the error.
        line: usize,
        /// The column of the error.
        column: usize,
    },

    /// A ZITADEL key file lacks a field or has a field of the wrong form.
    #[error("malformed ZITADEL key file: `{field}` must be {expected}")]
    MalformedKeyFile {
        /// The member concerned, e.g. "keyId".
        field: &'static str,
        /// What the member must be.
        expected: &'static str,
    },

    /// A ZITADEL key file has a `type` this library does not know.
    #[error(
        "unknown ZITADEL key file type `{found}`: expected \"serviceaccount\" or \"application\""
    )]
    UnknownKeyFileType {
        /// The `type` found, cut to a safe length.
        found: String,
    },

    /// A key file could not be read.
    #[error(
        "cannot read key file {}: {kind}; check the path and that this process may read it",
        path.display()
    )]
    KeyFileUnreadable {
        /// The file's path.
        path: PathBuf,
        /// Why reading failed.
        kind: io::ErrorKind,
    },

    /// A key file holds bytes that are not UTF-8 text.
    #[error(
        "key file {} is not text: expected PEM or JSON; read a binary DER key with \
         `SigningKey::from_der_pkcs8`",
        path.display()
    )]
    NotText {
        /// The file's path.
        path: PathBuf,
    },

    /// A key file may be read by other users (Unix).
    #[error(
        "key file {} may be read by group or others (mode {mode:03o}): run `chmod 600 {}`, or \
         allow shared permissions explicitly",
        path.display(),
        path.display()
    )]
    KeyFilePermissions {
        /// The file's path.
        path: PathBuf,
        /// The permission bits found.
        mode: u32,
    },

    /// The crypto library failed to sign.
    #[error("signing with {algorithm} failed in the crypto library: replace the key")]
    SigningFailed {
        /// The algorithm of the key.
        algorithm: Algorithm,
    },

    /// The crypto library failed to generate a key.
    #[error("generating a {algorithm} key failed in the crypto library")]
    GenerationFailed {
        /// The algorithm asked for.
        algorithm: Algorithm,
    },

    /// The crypto library failed to encode the key.
    #[error("encoding the {key_type} key as {format} failed in the crypto library")]
    EncodingFailed {
        /// The type of the key.
        key_type: KeyType,
        /// The format asked for.
        format: KeyFormat,
    },
}

/// Cuts an untrusted label (a PEM label, a `type` or `alg` value) to something
/// safe to show: short printable ASCII, or a placeholder.
pub(crate) fn safe_label(value: &str) -> String {
    const MAX: usize = 32;
    let printable = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.' | ':' | '+'));
    if !printable {
        return "<non-printable value>".to_owned();
    }
    if value.len() > MAX {
        return format!("{}…", &value[..MAX]);
    }
    value.to_owned()
}

/// The kind of a serde_json error, without its message (which can quote the
/// input).
pub(crate) fn json_category(error: &serde_json::Error) -> &'static str {
    match error.classify() {
        serde_json::error::Category::Io => "read",
        serde_json::error::Category::Syntax => "syntax",
        serde_json::error::Category::Data => "data",
        serde_json::error::Category::Eof => "end of input",
    }
}
