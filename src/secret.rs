//! Types that hold secrets: their `Debug` names the kind and never the value,
//! they have no `Display`, and their memory is wiped when they are dropped.
//!
//! Each secret kind is its own type so that a client secret can never be
//! passed where an access token is expected. The value is reachable only
//! through an explicitly named `secret()` accessor; every use of it is a place
//! where a leak could start, so keep those places few.

use std::fmt;

use zeroize::Zeroize;

macro_rules! secret_string {
    ($(#[$doc:meta])* $name:ident, $label:literal) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(Box<str>);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into().into_boxed_str())
            }

            /// Returns the secret value.
            ///
            /// Whatever receives this string can leak it: never log it, put it
            /// in an error or format it with `Debug`.
            pub fn secret(&self) -> &str {
                &self.0
            }

            /// Returns `true` when the value is the empty string.
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!($label, "(<redacted>)"))
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                self.0.zeroize();
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self::new(value)
            }
        }
    };
}

secret_string!(
    /// A client secret, for the client credentials method (RFC 6749 §2.3.1).
    ClientSecret,
    "ClientSecret"
);

secret_string!(
    /// A personal access token: a static bearer token that is used as given.
    PersonalAccessToken,
    "PersonalAccessToken"
);

secret_string!(
    /// An access token issued by the provider (RFC 6749 §5.1).
    AccessToken,
    "AccessToken"
);

secret_string!(
    /// An assertion: the signed JWT sent to the token endpoint (RFC 7523).
    Assertion,
    "Assertion"
);

/// Bytes that must not outlive their use: wiped on drop, never printed.
///
/// Holds private key material (DER) between reading a file and handing it to
/// the signing library.
#[derive(Clone)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Wraps secret bytes.
    pub fn new(value: Vec<u8>) -> Self {
        Self(value)
    }

    /// Returns the secret bytes. Never log them or put them in an error.
    pub fn secret(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<{} bytes redacted>)", self.0.len())
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_names_the_kind_and_hides_the_value() {
        let secret = ClientSecret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "ClientSecret(<redacted>)");
        assert_eq!(secret.secret(), "hunter2");
        let bytes = SecretBytes::new(b"private".to_vec());
        assert_eq!(format!("{bytes:?}"), "SecretBytes(<7 bytes redacted>)");
    }
}
