//! The ZITADEL key file, and reading keys from files.
//!
//! ZITADEL hands out a JSON file per key (see the design notes, §2):
//!
//! ```json
//! {"type":"serviceaccount","keyId":"…","key":"-----BEGIN RSA PRIVATE KEY-----…","userId":"…"}
//! {"type":"application","keyId":"…","key":"…","appId":"…","clientId":"…"}
//! ```
//!
//! Key files must not be readable by group or others on Unix, as ssh
//! demands of its keys: [`KeyFile::read`] refuses them with the `chmod 600`
//! fix, and [`KeyFile::dangerous_read_with_any_permissions`] reads them
//! anyway for setups where that is understood.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use zeroize::Zeroizing;

use super::error::{json_category, safe_label};
use super::text::{Text, text};
use super::{KeyError, SigningKey};
use crate::assertion::write_json_string;

/// A ZITADEL key file: a private key and the principal it belongs to.
///
/// `Debug` shows the ids and the key's algorithm, never key material.
///
/// # Examples
///
/// ```
/// use service_auth::credentials::{Algorithm, KeyFile, SigningKey};
///
/// let key = SigningKey::generate(Algorithm::Rs256, "key-1")?;
/// let json = KeyFile::service_account(key, "user-1").to_json()?;
/// let file = KeyFile::parse(&json)?;
/// assert_eq!((file.key_id(), file.principal()), ("key-1", "user-1"));
/// # Ok::<(), service_auth::credentials::KeyError>(())
/// ```
#[derive(Debug)]
pub enum KeyFile {
    /// The key of a service user (`"type":"serviceaccount"`), for the private
    /// key JWT authorization grant (RFC 7523 §2.1).
    ServiceAccount {
        /// The key id (`keyId`).
        key_id: String,
        /// The service user's id (`userId`): the assertion's `iss` and `sub`.
        user_id: String,
        /// The private key, with `key_id` as its key id.
        key: SigningKey,
    },
    /// The key of an application (`"type":"application"`), for private key
    /// JWT client authentication (RFC 7523 §2.2).
    Application {
        /// The key id (`keyId`).
        key_id: String,
        /// The application's id (`appId`).
        app_id: String,
        /// The client id (`clientId`): the assertion's `iss` and `sub`.
        client_id: String,
        /// The private key, with `key_id` as its key id.
        key: SigningKey,
    },
}

impl KeyFile {
    /// A service account key file for `key`, whose key id becomes `keyId`.
    pub fn service_account(key: SigningKey, user_id: impl Into<String>) -> Self {
        Self::ServiceAccount {
            key_id: key.key_id().to_owned(),
            user_id: user_id.into(),
            key,
        }
    }

    /// An application key file for `key`, whose key id becomes `keyId`.
    pub fn application(
        key: SigningKey,
        app_id: impl Into<String>,
        client_id: impl Into<String>,
    ) -> Self {
        Self::Application {
            key_id: key.key_id().to_owned(),
            app_id: app_id.into(),
            client_id: client_id.into(),
            key,
        }
    }

    /// Parses the JSON of a key file. The `key` member may hold any PEM
    /// [`SigningKey::from_pem`] reads; ZITADEL writes PKCS#1 RSA keys.
    ///
    /// serde_json unescapes the `key` member into a scratch buffer of its
    /// own, which is freed without being wiped; the copies this library
    /// makes are wiped.
    ///
    /// # Errors
    ///
    /// [`KeyError::InvalidJson`], [`KeyError::MalformedKeyFile`] naming the
    /// member, [`KeyError::UnknownKeyFileType`], or the error of reading the
    /// PEM in `key`.
    pub fn parse(json: &str) -> Result<Self, KeyError> {
        let raw: RawKeyFile<'_> =
            serde_json::from_str(json).map_err(|error| KeyError::InvalidJson {
                document: "key file",
                category: json_category(&error),
                line: error.line(),
                column: error.column(),
            })?;
        raw.into_key_file()
    }

    /// Reads and parses the key file at `path`.
    ///
    /// On Unix the file must not be readable or writable by group or others.
    ///
    /// # Errors
    ///
    /// [`KeyError::KeyFileUnreadable`], [`KeyError::KeyFilePermissions`], or
    /// an error of [`KeyFile::parse`].
    pub fn read(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let text = read_key_text(path.as_ref(), true)?;
        Self::parse(&text)
    }

    /// Reads and parses the key file at `path` whatever its permissions.
    ///
    /// Other users of the machine may be able to read the key: use this
    /// only where that is understood, e.g. a container with one user.
    ///
    /// # Errors
    ///
    /// [`KeyError::KeyFileUnreadable`] or an error of [`KeyFile::parse`].
    pub fn dangerous_read_with_any_permissions(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let text = read_key_text(path.as_ref(), false)?;
        Self::parse(&text)
    }

    /// The key id (`keyId`).
    pub fn key_id(&self) -> &str {
        match self {
            Self::ServiceAccount { key_id, .. } | Self::Application { key_id, .. } => key_id,
        }
    }

    /// The principal the key belongs to: the service user's id (`userId`)
    /// or the application's client id (`clientId`).
    pub fn principal(&self) -> &str {
        match self {
            Self::ServiceAccount { user_id, .. } => user_id,
            Self::Application { client_id, .. } => client_id,
        }
    }

    /// The private key.
    pub fn key(&self) -> &SigningKey {
        match self {
            Self::ServiceAccount { key, .. } | Self::Application { key, .. } => key,
        }
    }

    /// Takes the private key out of the file.
    pub fn into_key(self) -> SigningKey {
        match self {
            Self::ServiceAccount { key, .. } | Self::Application { key, .. } => key,
        }
    }

    /// Writes the key file as ZITADEL does, with the key as PEM in its
    /// conventional form ([`SigningKey::to_pem`]: PKCS#1 for RSA). For tests
    /// and examples.
    ///
    /// # Errors
    ///
    /// [`KeyError::EncodingFailed`] when the key cannot be encoded.
    pub fn to_json(&self) -> Result<Zeroizing<String>, KeyError> {
        let pem = self.key().to_pem()?;
        let mut json = Zeroizing::new(Vec::with_capacity(pem.len() + 256));
        let (kind, ids): (&str, &[(&str, &str)]) = match self {
            Self::ServiceAccount { user_id, .. } => ("serviceaccount", &[("userId", user_id)]),
            Self::Application {
                app_id, client_id, ..
            } => ("application", &[("appId", app_id), ("clientId", client_id)]),
        };
        json.extend_from_slice(b"{\"type\":");
        write_json_string(&mut json, kind);
        json.extend_from_slice(b",\"keyId\":");
        write_json_string(&mut json, self.key_id());
        json.extend_from_slice(b",\"key\":");
        write_json_string(&mut json, &pem);
        for (name, value) in ids {
            json.push(b',');
            write_json_string(&mut json, name);
            json.push(b':');
            write_json_string(&mut json, value);
        }
        json.push(b'}');
        // Every piece written is a Rust string or JSON syntax, so the bytes
        // are UTF-8.
        Ok(Zeroizing::new(into_text(json).unwrap_or_default()))
    }
}

impl SigningKey {
    /// Reads a PEM private key file (see [`SigningKey::from_pem`]).
    ///
    /// On Unix the file must not be readable or writable by group or others.
    ///
    /// # Errors
    ///
    /// [`KeyError::KeyFileUnreadable`], [`KeyError::KeyFilePermissions`], or
    /// an error of [`SigningKey::from_pem`].
    pub fn read_pem_file(
        path: impl AsRef<Path>,
        key_id: impl Into<String>,
    ) -> Result<Self, KeyError> {
        let text = read_key_text(path.as_ref(), true)?;
        Self::from_pem(&text, key_id)
    }
}

/// The members of a key file, borrowed from the JSON text where possible.
#[derive(Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RawKeyFile<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Text<'a>>,
    #[serde(borrow)]
    key_id: Option<Text<'a>>,
    #[serde(borrow)]
    key: Option<Text<'a>>,
    #[serde(borrow)]
    user_id: Option<Text<'a>>,
    #[serde(borrow)]
    app_id: Option<Text<'a>>,
    #[serde(borrow)]
    client_id: Option<Text<'a>>,
}

impl RawKeyFile<'_> {
    fn into_key_file(self) -> Result<KeyFile, KeyError> {
        let Some(kind) = text(&self.kind) else {
            return Err(malformed("type", "\"serviceaccount\" or \"application\""));
        };
        if kind != "serviceaccount" && kind != "application" {
            return Err(KeyError::UnknownKeyFileType {
                found: safe_label(kind),
            });
        }
        let key_id = required(&self.key_id, "keyId", "a non-empty string: the key id")?;
        let Some(pem) = text(&self.key) else {
            return Err(malformed(
                "key",
                "a PEM private key (\"-----BEGIN RSA PRIVATE KEY-----\\n…\")",
            ));
        };
        let key = SigningKey::from_pem(pem, key_id.clone())?;

        if kind == "serviceaccount" {
            let user_id = required(&self.user_id, "userId", "a non-empty string: the user id")?;
            return Ok(KeyFile::ServiceAccount {
                key_id,
                user_id,
                key,
            });
        }
        let app_id = required(&self.app_id, "appId", "a non-empty string: the app id")?;
        let client_id = required(
            &self.client_id,
            "clientId",
            "a non-empty string: the client id",
        )?;
        Ok(KeyFile::Application {
            key_id,
            app_id,
            client_id,
            key,
        })
    }
}

fn required(
    value: &Option<Text<'_>>,
    field: &'static str,
    expected: &'static str,
) -> Result<String, KeyError> {
    match text(value) {
        Some(value) if !value.is_empty() => Ok(value.to_owned()),
        _ => Err(malformed(field, expected)),
    }
}

fn malformed(field: &'static str, expected: &'static str) -> KeyError {
    KeyError::MalformedKeyFile { field, expected }
}

/// Reads a file holding key material into a buffer wiped on drop, checking
/// its permissions on the opened file (so the file checked is the file read).
fn read_key_text(path: &Path, check_permissions: bool) -> Result<Zeroizing<String>, KeyError> {
    let unreadable = |error: std::io::Error| KeyError::KeyFileUnreadable {
        path: path.to_owned(),
        kind: error.kind(),
    };
    let mut file = File::open(path).map_err(unreadable)?;
    let metadata = file.metadata().map_err(unreadable)?;
    if check_permissions {
        check_private_permissions(path, &metadata)?;
    }

    // One byte more than the size, so that reading to the end never grows
    // (and copies) the buffer.
    let size = usize::try_from(metadata.len()).unwrap_or(0);
    let mut bytes = Zeroizing::new(Vec::with_capacity(size.saturating_add(1)));
    file.read_to_end(&mut bytes).map_err(unreadable)?;
    tracing::debug!(path = %path.display(), bytes = bytes.len(), "read key file");
    let text = into_text(bytes).ok_or_else(|| KeyError::NotText {
        path: path.to_owned(),
    })?;
    Ok(Zeroizing::new(text))
}

#[cfg(unix)]
fn check_private_permissions(path: &Path, metadata: &std::fs::Metadata) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;

    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    Err(KeyError::KeyFilePermissions {
        path: path.to_owned(),
        mode,
    })
}

#[cfg(not(unix))]
fn check_private_permissions(_: &Path, _: &std::fs::Metadata) -> Result<(), KeyError> {
    Ok(())
}

/// Turns bytes into text without copying them, or `None` (with the bytes
/// wiped) when they are not UTF-8. The caller wraps the text to wipe it.
fn into_text(mut bytes: Zeroizing<Vec<u8>>) -> Option<String> {
    let taken = std::mem::take(&mut *bytes);
    match String::from_utf8(taken) {
        Ok(text) => Some(text),
        Err(error) => {
            let mut rejected = error.into_bytes();
            zeroize::Zeroize::zeroize(&mut rejected);
            None
        }
    }
}
