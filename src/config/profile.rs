//! Provider profiles: what differs between providers, as data.
//!
//! Providers agree on the wire format of RFC 6749 and RFC 7523 and disagree
//! on details a client must get right: which `aud` a client assertion
//! carries, which scopes a token request needs, how scopes are spelt. A
//! [`Profile`] records those details for one provider; the configuration
//! applies them unless an option overrides them.

use std::fmt;

use super::Error;

/// The `aud` a profile gives client assertions (RFC 7523 §3 leaves the
/// value to the provider).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProfileAudience {
    /// The issuer exactly as normalised (no trailing slash).
    Issuer,
    /// The issuer followed by one `/`, as Auth0 documents it.
    IssuerWithTrailingSlash,
    /// The token endpoint the request goes to (OIDC Core 1.0 §9, errata 2).
    TokenEndpoint,
}

/// How a profile's provider expects the scopes of a client credentials
/// request to be spelt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScopeConvention {
    /// Any scopes, including none (RFC 6749 §3.3).
    Free,
    /// At least one scope of the form `<resource>/.default`, as Microsoft
    /// Entra ID requires for the client credentials grant.
    ResourceDefault,
}

/// What differs between providers, as data: chosen by name with
/// [`Profile::by_name`] (or `SERVICE_AUTH_PROFILE`) or as a constant.
///
/// Each constant cites the provider's documentation of its rules.
///
/// # Examples
///
/// ```
/// use service_auth::config::{Profile, ProfileAudience};
///
/// let okta = Profile::by_name("okta")?;
/// assert_eq!(okta.client_assertion_audience, ProfileAudience::TokenEndpoint);
/// assert_eq!(Profile::ZITADEL.default_scopes[0], "openid");
///
/// let err = Profile::by_name("octa").unwrap_err();
/// assert!(err.to_string().contains("generic, zitadel, keycloak, auth0, okta, entra"));
/// # Ok::<(), service_auth::config::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Profile {
    /// The name [`Profile::by_name`] knows it by.
    pub name: &'static str,
    /// The scopes requested when the configuration names none.
    pub default_scopes: &'static [&'static str],
    /// The `aud` of client assertions (private key JWT client
    /// authentication) unless the configuration sets an audience.
    /// Assertions of the JWT bearer grant carry the issuer whatever the
    /// profile (RFC 7523 §3; ZITADEL requires it).
    pub client_assertion_audience: ProfileAudience,
    /// How client credentials scopes are spelt.
    pub scope_convention: ScopeConvention,
    /// Where the provider documents these rules.
    pub source: &'static str,
}

impl Profile {
    /// Any provider that follows the RFCs: no default scopes; client
    /// assertions name the token endpoint, as OIDC Core 1.0 §9 (errata set 2)
    /// says they should.
    pub const GENERIC: Self = Self {
        name: "generic",
        default_scopes: &[],
        client_assertion_audience: ProfileAudience::TokenEndpoint,
        scope_convention: ScopeConvention::Free,
        source: "https://openid.net/specs/openid-connect-core-1_0.html#ClientAuthentication",
    };

    /// ZITADEL: the default scope `openid
    /// urn:zitadel:iam:org:project:id:zitadel:aud` (access to ZITADEL's own
    /// API), and assertions whose `aud` is the issuer (the instance's
    /// domain), for service users' JWT profile grant and for application
    /// keys alike. Source: ZITADEL, "Configure private key JWT
    /// authentication for service users".
    pub const ZITADEL: Self = Self {
        name: "zitadel",
        default_scopes: &["openid", "urn:zitadel:iam:org:project:id:zitadel:aud"],
        client_assertion_audience: ProfileAudience::Issuer,
        scope_convention: ScopeConvention::Free,
        source: "https://zitadel.com/docs/guides/integrate/service-users/private-key-jwt",
    };

    /// Keycloak: client assertions carry the realm's issuer
    /// (`https://host/realms/<realm>`). Keycloak accepted the issuer or the
    /// token endpoint until 26.1; from 26.2 it accepts a single audience
    /// and moves towards the issuer alone, as revised OIDC Core and FAPI
    /// 2.0 require (keycloak/keycloak#38751, #38819, and the 26.2 upgrading
    /// notes, "JWT client authentication aligned with the latest OIDC
    /// specification"). The issuer is the one value every version accepts.
    pub const KEYCLOAK: Self = Self {
        name: "keycloak",
        default_scopes: &[],
        client_assertion_audience: ProfileAudience::Issuer,
        scope_convention: ScopeConvention::Free,
        source: "https://www.keycloak.org/docs/latest/upgrading/#jwt-client-authentication-aligned-with-the-latest-oidc-specification",
    };

    /// Auth0: client assertions carry the tenant URL *with* its trailing
    /// slash (`https://{tenant}.auth0.com/`, or the custom domain), and
    /// live at most five minutes. Source: Auth0, "Authenticate with Private
    /// Key JWT".
    ///
    /// Auth0 also reads an `audience` body parameter naming the API the
    /// token is for; without one it uses the tenant's default audience
    /// (Dashboard → Settings → API Authorization Settings). The token
    /// request has no way to add body parameters, so set the default
    /// audience for this profile to work.
    pub const AUTH0: Self = Self {
        name: "auth0",
        default_scopes: &[],
        client_assertion_audience: ProfileAudience::IssuerWithTrailingSlash,
        scope_convention: ScopeConvention::Free,
        source: "https://auth0.com/docs/get-started/authentication-and-authorization-flow/authenticate-with-private-key-jwt",
    };

    /// Okta: client assertions carry the full URL of the token endpoint
    /// (`https://{domain}/oauth2/v1/token`, or the custom authorization
    /// server's). Source: Okta, "Build a JWT for client authentication".
    pub const OKTA: Self = Self {
        name: "okta",
        default_scopes: &[],
        client_assertion_audience: ProfileAudience::TokenEndpoint,
        scope_convention: ScopeConvention::Free,
        source: "https://developer.okta.com/docs/guides/build-self-signed-jwt/main/",
    };

    /// Microsoft Entra ID: client assertions carry the token endpoint
    /// (`https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`;
    /// Microsoft, "Certificate credentials"), and the client credentials
    /// grant asks for `<resource>/.default`, e.g.
    /// `https://graph.microsoft.com/.default` (Microsoft, "Daemon app:
    /// acquire a token", <https://learn.microsoft.com/entra/identity-platform/scenario-daemon-acquire-token>).
    pub const ENTRA: Self = Self {
        name: "entra",
        default_scopes: &[],
        client_assertion_audience: ProfileAudience::TokenEndpoint,
        scope_convention: ScopeConvention::ResourceDefault,
        source: "https://learn.microsoft.com/entra/identity-platform/certificate-credentials",
    };

    /// Every profile, in the order their names are listed in errors.
    pub const ALL: [Self; 6] = [
        Self::GENERIC,
        Self::ZITADEL,
        Self::KEYCLOAK,
        Self::AUTH0,
        Self::OKTA,
        Self::ENTRA,
    ];

    /// The profile called `name` (ASCII case ignored).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownProfile`] listing the valid names.
    pub fn by_name(name: &str) -> Result<Self, Error> {
        let found = Self::ALL
            .into_iter()
            .find(|profile| profile.name.eq_ignore_ascii_case(name.trim()));
        found.ok_or_else(|| Error::UnknownProfile {
            name: super::printable(name),
            valid: Self::names(),
        })
    }

    /// The valid names, comma-separated: `generic, zitadel, …`.
    pub fn names() -> String {
        Self::ALL.map(|profile| profile.name).join(", ")
    }
}

impl Default for Profile {
    fn default() -> Self {
        Self::GENERIC
    }
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profile")
            .field("name", &self.name)
            .field("default_scopes", &self.default_scopes)
            .field("client_assertion_audience", &self.client_assertion_audience)
            .field("scope_convention", &self.scope_convention)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found_case_insensitively() {
        for profile in Profile::ALL {
            assert_eq!(Profile::by_name(profile.name).unwrap(), profile);
            let upper = profile.name.to_ascii_uppercase();
            assert_eq!(Profile::by_name(&upper).unwrap(), profile);
        }
        let mut names: Vec<_> = Profile::ALL.iter().map(|p| p.name).collect();
        names.dedup();
        assert_eq!(names.len(), Profile::ALL.len());
    }

    #[test]
    fn an_unknown_name_lists_the_valid_ones() {
        let err = Profile::by_name("azure").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("`azure`"), "{message}");
        assert!(message.contains(&Profile::names()), "{message}");
    }
}
