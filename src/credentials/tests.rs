//! Tests of the credentials layer against fixtures written by openssl and
//! python's `cryptography` (tests/data/keys, all test-only keys).

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::*;

const RSA_PKCS1: &str = include_str!("../../tests/data/keys/test-only-rsa2048-pkcs1.pem");
const RSA_PKCS8: &str = include_str!("../../tests/data/keys/test-only-rsa2048-pkcs8.pem");
const RSA_PUBLIC: &str = include_str!("../../tests/data/keys/test-only-rsa2048-public.pem");
const RSA_1024_PKCS1: &str = include_str!("../../tests/data/keys/test-only-rsa1024-pkcs1.pem");
const RSA_1024_PKCS8: &str = include_str!("../../tests/data/keys/test-only-rsa1024-pkcs8.pem");
const P256_SEC1: &str = include_str!("../../tests/data/keys/test-only-p256-sec1.pem");
const P256_PKCS8: &str = include_str!("../../tests/data/keys/test-only-p256-pkcs8.pem");
const P384_SEC1: &str = include_str!("../../tests/data/keys/test-only-p384-sec1.pem");
const P384_PKCS8: &str = include_str!("../../tests/data/keys/test-only-p384-pkcs8.pem");
const ED25519_PKCS8: &str = include_str!("../../tests/data/keys/test-only-ed25519-pkcs8.pem");
const ED448_PKCS8: &str = include_str!("../../tests/data/keys/test-only-ed448-pkcs8.pem");
const CERTIFICATE: &str = include_str!("../../tests/data/keys/test-only-certificate.pem");
const ENCRYPTED_PKCS8: &str = include_str!("../../tests/data/keys/test-only-encrypted-pkcs8.pem");
const ENCRYPTED_PKCS1: &str = include_str!("../../tests/data/keys/test-only-encrypted-pkcs1.pem");
const RSA_JWK: &str = include_str!("../../tests/data/keys/test-only-rsa-jwk.json");
const P256_JWK: &str = include_str!("../../tests/data/keys/test-only-p256-jwk.json");
const ED25519_JWK: &str = include_str!("../../tests/data/keys/test-only-ed25519-jwk.json");
const ZITADEL_SERVICE_ACCOUNT: &str =
    include_str!("../../tests/data/keys/test-only-zitadel-serviceaccount.json");
const ZITADEL_APPLICATION: &str =
    include_str!("../../tests/data/keys/test-only-zitadel-application.json");
const REFERENCE: &str = include_str!("../../tests/data/keys/test-only-reference-signatures.json");

const ALGORITHMS: [Algorithm; 3] = [Algorithm::Rs256, Algorithm::Es256, Algorithm::EdDsa];

fn reference(name: &str) -> Vec<u8> {
    let json: serde_json::Value = serde_json::from_str(REFERENCE).unwrap();
    URL_SAFE_NO_PAD
        .decode(json[name].as_str().unwrap())
        .unwrap()
}

fn jwk_member(jwk: &str, member: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(jwk).unwrap();
    json[member].as_str().unwrap().to_owned()
}

/// The base64 body lines of the PEMs and the private JWK members: the text
/// that must never appear in a message or a `Debug` output. (The PEM lines
/// hold public parts too, which messages and `Debug` do not show either.)
fn key_material() -> Vec<String> {
    let mut material = private_jwk_members();
    for pem in [RSA_PKCS1, RSA_PKCS8, P256_SEC1, P256_PKCS8, ED25519_PKCS8] {
        let lines = pem.lines().filter(|line| !line.starts_with("-----"));
        material.extend(lines.map(str::to_owned));
    }
    material
}

/// The private members of the fixture JWKs.
fn private_jwk_members() -> Vec<String> {
    let mut material = Vec::new();
    for (jwk, members) in [
        (RSA_JWK, &["d", "p", "q", "dp", "dq", "qi"][..]),
        (P256_JWK, &["d"][..]),
        (ED25519_JWK, &["d"][..]),
    ] {
        material.extend(members.iter().map(|member| jwk_member(jwk, member)));
    }
    material
}

/// Fails when `text` holds 12 consecutive characters of any key material.
fn assert_no_key_material(text: &str) {
    assert_none_of(text, &key_material());
}

fn assert_none_of(text: &str, secrets: &[String]) {
    for secret in secrets {
        for window in secret.as_bytes().windows(12) {
            let window = std::str::from_utf8(window).unwrap();
            assert!(!text.contains(window), "key material in {text:?}");
        }
    }
}

/// Checks the house rules for an error message and returns it.
fn message(error: &KeyError) -> String {
    let text = error.to_string();
    assert!(
        text.starts_with(|c: char| !c.is_uppercase()),
        "capitalised: {text}"
    );
    assert!(!text.ends_with('.'), "trailing period: {text}");
    assert_no_key_material(&text);
    assert_no_key_material(&format!("{error:?}"));
    text
}

fn public_jwk(key: &SigningKey) -> serde_json::Value {
    key.public_key().to_jwk()
}

fn temp_path(name: &str) -> PathBuf {
    let unique = format!("service-auth-{}-{name}", std::process::id());
    std::env::temp_dir().join(unique)
}

#[cfg(unix)]
fn write_file(name: &str, contents: &[u8], mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = temp_path(name);
    std::fs::write(&path, contents).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

// Signing and verification.

#[test]
fn generated_keys_sign_and_verify() {
    for algorithm in ALGORITHMS {
        let key = SigningKey::generate(algorithm, "kid").unwrap();
        assert_eq!(key.algorithm(), algorithm);
        assert_eq!(key.key_id(), "kid");
        let public = key.public_key();
        assert_eq!((public.algorithm(), public.key_id()), (algorithm, "kid"));

        let signature = key.sign(b"message").unwrap();
        let expected_len = if algorithm == Algorithm::Rs256 {
            256
        } else {
            64
        };
        assert_eq!(signature.len(), expected_len, "{algorithm}");
        assert!(public.verify(b"message", &signature));
        assert!(!public.verify(b"messagf", &signature));

        let mut tampered = signature.clone();
        tampered[10] ^= 1;
        assert!(!public.verify(b"message", &tampered));
        assert!(!public.verify(b"message", &signature[..signature.len() - 1]));

        let other = SigningKey::generate(algorithm, "kid").unwrap();
        assert!(!other.public_key().verify(b"message", &signature));
    }
}

#[test]
fn es256_signatures_are_fixed_64_bytes_not_asn1() {
    let key = SigningKey::generate(Algorithm::Es256, "kid").unwrap();
    for message in [&b""[..], b"a", b"a longer message to sign"] {
        let signature = key.sign(message).unwrap();
        assert_eq!(signature.len(), 64);
        assert!(key.public_key().verify(message, &signature));
    }
}

#[test]
fn signatures_match_an_independent_implementation() {
    let message = reference("message");

    // RS256 and EdDSA are deterministic: the bytes must be equal.
    let rsa = SigningKey::from_pem(RSA_PKCS8, "rsa").unwrap();
    assert_eq!(rsa.sign(&message).unwrap(), reference("RS256"));
    let ed = SigningKey::from_pem(ED25519_PKCS8, "ed").unwrap();
    assert_eq!(ed.sign(&message).unwrap(), reference("EdDSA"));

    // ECDSA is randomised: the reference must verify under our public key.
    let ec = SigningKey::from_pem(P256_SEC1, "ec").unwrap();
    assert!(ec.public_key().verify(&message, &reference("ES256")));
}

#[test]
fn with_algorithm_accepts_the_matching_algorithm_only() {
    for algorithm in ALGORITHMS {
        let key = SigningKey::generate(algorithm, "kid").unwrap();
        let key = key.with_algorithm(algorithm).unwrap();
        for other in ALGORITHMS.into_iter().filter(|other| *other != algorithm) {
            let key = SigningKey::generate(algorithm, "kid").unwrap();
            let error = key.with_algorithm(other).unwrap_err();
            assert_eq!(
                error,
                KeyError::AlgorithmMismatch {
                    requested: other.as_str().to_owned(),
                    key_type: algorithm.key_type(),
                    expected: algorithm,
                }
            );
            assert!(message(&error).contains(other.as_str()));
        }
        assert_eq!(key.algorithm(), algorithm);
    }
}

// PEM and DER.

#[test]
fn reads_every_pem_kind() {
    let cases = [
        (RSA_PKCS1, Algorithm::Rs256),
        (RSA_PKCS8, Algorithm::Rs256),
        (P256_SEC1, Algorithm::Es256),
        (P256_PKCS8, Algorithm::Es256),
        (ED25519_PKCS8, Algorithm::EdDsa),
    ];
    for (pem, algorithm) in cases {
        let key = SigningKey::from_pem(pem, "kid").unwrap();
        assert_eq!(key.algorithm(), algorithm);
        let signature = key.sign(b"m").unwrap();
        assert!(key.public_key().verify(b"m", &signature));
    }
    // The two encodings of one key give one public key.
    let pkcs1 = SigningKey::from_pem(RSA_PKCS1, "kid").unwrap();
    let pkcs8 = SigningKey::from_pem(RSA_PKCS8, "kid").unwrap();
    assert_eq!(public_jwk(&pkcs1), public_jwk(&pkcs8));
    let sec1 = SigningKey::from_pem(P256_SEC1, "kid").unwrap();
    let pkcs8 = SigningKey::from_pem(P256_PKCS8, "kid").unwrap();
    assert_eq!(public_jwk(&sec1), public_jwk(&pkcs8));
}

#[test]
fn skips_other_sections_before_the_key() {
    let bundle = format!("{CERTIFICATE}\n{RSA_PKCS8}");
    let key = SigningKey::from_pem(&bundle, "kid").unwrap();
    assert_eq!(key.algorithm(), Algorithm::Rs256);
}

#[test]
fn exported_keys_read_back() {
    for algorithm in ALGORITHMS {
        let key = SigningKey::generate(algorithm, "kid").unwrap();
        let expected = public_jwk(&key);

        let pkcs8 = key.to_pkcs8_pem().unwrap();
        assert!(pkcs8.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert_eq!(
            public_jwk(&SigningKey::from_pem(&pkcs8, "kid").unwrap()),
            expected
        );

        let der = key.to_pkcs8_der().unwrap();
        assert_eq!(
            public_jwk(&SigningKey::from_der_pkcs8(&der, "kid").unwrap()),
            expected
        );

        let conventional = key.to_pem().unwrap();
        let label = match algorithm {
            Algorithm::Rs256 => "RSA PRIVATE KEY",
            Algorithm::Es256 => "EC PRIVATE KEY",
            Algorithm::EdDsa => "PRIVATE KEY",
        };
        assert!(conventional.starts_with(&format!("-----BEGIN {label}-----\n")));
        assert_eq!(
            public_jwk(&SigningKey::from_pem(&conventional, "kid").unwrap()),
            expected
        );
    }
}

#[test]
fn pem_output_has_64_character_lines() {
    let key = SigningKey::generate(Algorithm::Rs256, "kid").unwrap();
    let pem = key.to_pkcs8_pem().unwrap();
    let body: Vec<&str> = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    assert!(body[..body.len() - 1].iter().all(|line| line.len() == 64));
    assert!(body[body.len() - 1].len() <= 64);
    assert!(pem.ends_with("-----END PRIVATE KEY-----\n"));
}

#[test]
fn reads_der_in_each_format() {
    let rsa = SigningKey::from_pem(RSA_PKCS1, "kid").unwrap();
    let pkcs1 = pem_body(&rsa.to_pem().unwrap());
    let from_pkcs1 = SigningKey::from_der_pkcs1(&pkcs1, "kid").unwrap();
    assert_eq!(public_jwk(&from_pkcs1), public_jwk(&rsa));

    let ec = SigningKey::from_pem(P256_PKCS8, "kid").unwrap();
    let sec1 = pem_body(&ec.to_pem().unwrap());
    let from_sec1 = SigningKey::from_der_sec1(&sec1, "kid").unwrap();
    assert_eq!(public_jwk(&from_sec1), public_jwk(&ec));
}

fn pem_body(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

#[test]
fn public_key_exports_spki_pem() {
    let key = SigningKey::from_pem(RSA_PKCS1, "kid").unwrap();
    assert_eq!(key.public_key().to_spki_pem(), RSA_PUBLIC);
    for algorithm in [Algorithm::Es256, Algorithm::EdDsa] {
        let key = SigningKey::generate(algorithm, "kid").unwrap();
        let pem = key.public_key().to_spki_pem();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert!(pem.ends_with("-----END PUBLIC KEY-----\n"));
    }
}

// JWK.

#[test]
fn reads_a_jwk_of_each_key_type() {
    let cases = [
        (RSA_JWK, RSA_PKCS8, Algorithm::Rs256, "test-only-rsa"),
        (P256_JWK, P256_PKCS8, Algorithm::Es256, "test-only-p256"),
        (
            ED25519_JWK,
            ED25519_PKCS8,
            Algorithm::EdDsa,
            "test-only-ed25519",
        ),
    ];
    for (jwk, pem, algorithm, kid) in cases {
        let key = SigningKey::from_jwk(jwk).unwrap();
        assert_eq!((key.algorithm(), key.key_id()), (algorithm, kid));
        let same = SigningKey::from_pem(pem, kid).unwrap();
        assert_eq!(public_jwk(&key), public_jwk(&same));
        let signature = key.sign(b"m").unwrap();
        assert!(same.public_key().verify(b"m", &signature));
    }
}

#[test]
fn public_jwk_has_the_registered_members() {
    let rsa = public_jwk(&SigningKey::from_jwk(RSA_JWK).unwrap());
    assert_eq!(rsa["kty"], "RSA");
    assert_eq!(rsa["n"], jwk_member(RSA_JWK, "n"));
    assert_eq!(rsa["e"], "AQAB");
    assert_eq!(rsa["alg"], "RS256");
    assert_eq!(rsa["use"], "sig");
    assert_eq!(rsa["kid"], "test-only-rsa");
    assert!(rsa.get("d").is_none());

    let ec = public_jwk(&SigningKey::from_jwk(P256_JWK).unwrap());
    assert_eq!(
        (&ec["kty"], &ec["crv"], &ec["alg"]),
        (&"EC".into(), &"P-256".into(), &"ES256".into())
    );
    assert_eq!(ec["x"], jwk_member(P256_JWK, "x"));
    assert_eq!(ec["y"], jwk_member(P256_JWK, "y"));

    let ed = public_jwk(&SigningKey::from_jwk(ED25519_JWK).unwrap());
    assert_eq!(
        (&ed["kty"], &ed["crv"], &ed["alg"]),
        (&"OKP".into(), &"Ed25519".into(), &"EdDSA".into())
    );
    assert_eq!(ed["x"], jwk_member(ED25519_JWK, "x"));
    for jwk in [rsa, ec, ed] {
        assert_none_of(&jwk.to_string(), &private_jwk_members());
    }
}

#[test]
fn public_jwk_reads_back_and_verifies() {
    for algorithm in ALGORITHMS {
        let key = SigningKey::generate(algorithm, "kid-1").unwrap();
        let jwk = public_jwk(&key).to_string();
        let public = PublicKey::from_jwk(&jwk).unwrap();
        assert_eq!((public.algorithm(), public.key_id()), (algorithm, "kid-1"));
        assert!(public.verify(b"m", &key.sign(b"m").unwrap()));
        assert_eq!(public.to_jwk(), public_jwk(&key));
    }
}

#[test]
fn jwk_accepts_escaped_strings_and_leading_zeros() {
    let mut jwk: serde_json::Value = serde_json::from_str(ED25519_JWK).unwrap();
    jwk["kid"] = "key/\"1\"".into();
    let key = SigningKey::from_jwk(&jwk.to_string().replace('/', "\\/")).unwrap();
    assert_eq!(key.key_id(), "key/\"1\"");

    let mut jwk: serde_json::Value = serde_json::from_str(RSA_JWK).unwrap();
    let e = URL_SAFE_NO_PAD.encode([0, 1, 0, 1]);
    jwk["e"] = e.into();
    let key = SigningKey::from_jwk(&jwk.to_string()).unwrap();
    assert_eq!(public_jwk(&key)["e"], "AQAB");
}

// ZITADEL key files.

#[test]
fn reads_a_zitadel_service_account_key_file() {
    let file = KeyFile::parse(ZITADEL_SERVICE_ACCOUNT).unwrap();
    assert_eq!(file.key_id(), "100000000000000001");
    assert_eq!(file.principal(), "200000000000000002");
    let KeyFile::ServiceAccount {
        key_id,
        user_id,
        key,
    } = &file
    else {
        panic!("not a service account key file: {file:?}");
    };
    assert_eq!(
        (key_id.as_str(), user_id.as_str()),
        ("100000000000000001", "200000000000000002")
    );
    assert_eq!(
        (key.algorithm(), key.key_id()),
        (Algorithm::Rs256, "100000000000000001")
    );
    let expected = SigningKey::from_pem(RSA_PKCS1, "x").unwrap();
    assert_eq!(
        public_jwk(&file.into_key())["n"],
        public_jwk(&expected)["n"]
    );
}

#[test]
fn reads_a_zitadel_application_key_file() {
    let file = KeyFile::parse(ZITADEL_APPLICATION).unwrap();
    assert_eq!(file.key_id(), "100000000000000003");
    assert_eq!(file.principal(), "300000000000000004@test-only");
    let KeyFile::Application {
        app_id, client_id, ..
    } = &file
    else {
        panic!("not an application key file: {file:?}");
    };
    assert_eq!(app_id, "300000000000000004");
    assert_eq!(client_id, "300000000000000004@test-only");
    assert_eq!(file.key().key_id(), "100000000000000003");
}

#[test]
fn key_files_write_and_read_back() {
    for algorithm in ALGORITHMS {
        let key = SigningKey::generate(algorithm, "key-1").unwrap();
        let expected = public_jwk(&key);
        let json = KeyFile::service_account(key, "user-1").to_json().unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["type"], "serviceaccount");
        assert_eq!(value["userId"], "user-1");
        let file = KeyFile::parse(&json).unwrap();
        assert_eq!((file.key_id(), file.principal()), ("key-1", "user-1"));
        assert_eq!(public_jwk(file.key()), expected);

        let key = file.into_key();
        let json = KeyFile::application(key, "app-1", "client-1")
            .to_json()
            .unwrap();
        let file = KeyFile::parse(&json).unwrap();
        assert!(matches!(&file, KeyFile::Application { app_id, .. } if app_id == "app-1"));
        assert_eq!(file.principal(), "client-1");
        assert_eq!(public_jwk(file.key()), expected);
    }
    let rsa = SigningKey::generate(Algorithm::Rs256, "k").unwrap();
    let json = KeyFile::service_account(rsa, "u").to_json().unwrap();
    assert!(json.contains("-----BEGIN RSA PRIVATE KEY-----\\n"));
}

#[cfg(unix)]
#[test]
fn reads_key_files_with_private_permissions_only() {
    let path = write_file("private.json", ZITADEL_SERVICE_ACCOUNT.as_bytes(), 0o600);
    assert_eq!(
        KeyFile::read(&path).unwrap().principal(),
        "200000000000000002"
    );
    std::fs::remove_file(&path).unwrap();

    let path = write_file("shared.json", ZITADEL_SERVICE_ACCOUNT.as_bytes(), 0o644);
    let error = KeyFile::read(&path).unwrap_err();
    assert_eq!(
        error,
        KeyError::KeyFilePermissions {
            path: path.clone(),
            mode: 0o644
        }
    );
    let text = message(&error);
    assert!(text.contains("chmod 600") && text.contains("644"), "{text}");
    assert!(text.contains(&path.display().to_string()));
    let file = KeyFile::dangerous_read_with_any_permissions(&path).unwrap();
    assert_eq!(file.key_id(), "100000000000000001");
    std::fs::remove_file(&path).unwrap();

    let path = write_file("key.pem", P256_SEC1.as_bytes(), 0o400);
    let key = SigningKey::read_pem_file(&path, "kid").unwrap();
    assert_eq!(key.algorithm(), Algorithm::Es256);
    std::fs::remove_file(&path).unwrap();

    let path = write_file("binary.der", &[0x30, 0x82, 0xFF, 0xFE], 0o600);
    let error = KeyFile::read(&path).unwrap_err();
    assert_eq!(error, KeyError::NotText { path: path.clone() });
    assert!(message(&error).contains("from_der_pkcs8"));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn missing_key_file_names_the_path() {
    let path = temp_path("does-not-exist.json");
    let error = KeyFile::read(&path).unwrap_err();
    assert_eq!(
        error,
        KeyError::KeyFileUnreadable {
            path: path.clone(),
            kind: std::io::ErrorKind::NotFound
        }
    );
    let text = message(&error);
    assert!(
        text.contains(&path.display().to_string()) && text.contains("not found"),
        "{text}"
    );
    assert!(SigningKey::read_pem_file(&path, "kid").is_err());
}

// Debug output.

#[test]
fn debug_shows_no_key_material() {
    let key = SigningKey::from_pem(RSA_PKCS1, "kid-1").unwrap();
    assert_eq!(
        format!("{key:?}"),
        "SigningKey { algorithm: Rs256, key_id: \"kid-1\", .. }"
    );
    let public = format!("{:?}", key.public_key());
    assert_eq!(
        public,
        "PublicKey { algorithm: Rs256, key_id: \"kid-1\", .. }"
    );
    for json in [ZITADEL_SERVICE_ACCOUNT, ZITADEL_APPLICATION] {
        let file = format!("{:?}", KeyFile::parse(json).unwrap());
        assert!(
            file.contains("100000000000000") && file.contains("Rs256"),
            "{file}"
        );
        assert!(!file.contains("BEGIN"));
        assert_no_key_material(&file);
    }
    for jwk in [RSA_JWK, P256_JWK, ED25519_JWK] {
        let key = SigningKey::from_jwk(jwk).unwrap();
        assert_no_key_material(&format!("{key:?} {:?}", key.public_key()));
    }
    let ring = KeyRing::new(key);
    assert_no_key_material(&format!("{ring:?}"));
}

// Every error, with a message that names the problem.

#[test]
fn empty_key_id_is_refused() {
    let error = SigningKey::from_pem(P256_SEC1, "").unwrap_err();
    assert_eq!(error, KeyError::EmptyKeyId);
    assert!(message(&error).contains("key id is empty"));
    assert_eq!(
        SigningKey::generate(Algorithm::EdDsa, "").unwrap_err(),
        KeyError::EmptyKeyId
    );
}

#[test]
fn text_without_pem_is_refused() {
    for text in ["", "not a key", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"] {
        let error = SigningKey::from_pem(text, "kid").unwrap_err();
        assert_eq!(error, KeyError::NoPem);
        assert!(message(&error).contains("-----BEGIN PRIVATE KEY-----"));
    }
}

#[test]
fn malformed_pem_is_refused() {
    let truncated = &RSA_PKCS8[..RSA_PKCS8.len() - 30];
    let error = SigningKey::from_pem(truncated, "kid").unwrap_err();
    assert_eq!(
        error,
        KeyError::MalformedPem {
            problem: "a section has no END line"
        }
    );
    assert!(message(&error).contains("no END line"));

    let corrupted = RSA_PKCS8.replacen("MII", "M!I", 1);
    let error = SigningKey::from_pem(&corrupted, "kid").unwrap_err();
    assert_eq!(
        error,
        KeyError::MalformedPem {
            problem: "the base64 body is invalid"
        }
    );
    message(&error);
}

#[test]
fn certificates_and_public_keys_are_refused() {
    let cases = [(CERTIFICATE, "certificate"), (RSA_PUBLIC, "public key")];
    for (pem, found) in cases {
        let error = SigningKey::from_pem(pem, "kid").unwrap_err();
        assert_eq!(error, KeyError::NotAPrivateKey { found });
        let text = message(&error);
        assert!(
            text.contains(found) && text.contains("not a private key"),
            "{text}"
        );
    }
}

#[test]
fn encrypted_keys_are_refused_with_the_fix() {
    for pem in [ENCRYPTED_PKCS8, ENCRYPTED_PKCS1] {
        let error = SigningKey::from_pem(pem, "kid").unwrap_err();
        assert_eq!(error, KeyError::EncryptedKey);
        assert!(message(&error).contains("openssl pkcs8 -topk8 -nocrypt"));
    }
}

#[test]
fn unknown_pem_labels_are_named() {
    let openssh = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n\
                   -----END OPENSSH PRIVATE KEY-----\n";
    let error = SigningKey::from_pem(openssh, "kid").unwrap_err();
    assert_eq!(
        error,
        KeyError::UnsupportedPemLabel {
            label: "OPENSSH PRIVATE KEY".into()
        }
    );
    assert!(message(&error).contains("`OPENSSH PRIVATE KEY`"));
}

#[test]
fn malformed_der_is_refused() {
    let der = pem_body(RSA_PKCS8);
    let error = SigningKey::from_der_pkcs8(&der[..100], "kid").unwrap_err();
    assert!(
        matches!(
            error,
            KeyError::MalformedDer {
                format: KeyFormat::Pkcs8,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(message(&error).contains("PKCS#8"));

    let pkcs1 = pem_body(RSA_PKCS1);
    let error = SigningKey::from_der_pkcs8(&pkcs1, "kid").unwrap_err();
    assert!(matches!(error, KeyError::MalformedDer { .. }), "{error:?}");
    let error = SigningKey::from_der_pkcs1(&[0x30, 0x03, 0x02, 0x01], "kid").unwrap_err();
    assert!(
        matches!(
            error,
            KeyError::MalformedDer {
                format: KeyFormat::Pkcs1,
                ..
            }
        ),
        "{error:?}"
    );
    let error = SigningKey::from_der_sec1(&[0x04, 0x00], "kid").unwrap_err();
    assert_eq!(
        error,
        KeyError::MalformedDer {
            format: KeyFormat::Sec1,
            problem: "a SEQUENCE was expected"
        }
    );
    message(&error);
}

#[test]
fn unsupported_key_types_are_named() {
    let cases = [
        (P384_PKCS8, "EC P-384"),
        (P384_SEC1, "EC P-384"),
        (RSA_1024_PKCS1, "RSA with a 1024-bit modulus"),
        (RSA_1024_PKCS8, "RSA with a 1024-bit modulus"),
        (ED448_PKCS8, "Ed448"),
    ];
    for (pem, found) in cases {
        let error = SigningKey::from_pem(pem, "kid").unwrap_err();
        assert_eq!(
            error,
            KeyError::UnsupportedKeyType {
                found: found.into()
            }
        );
        let text = message(&error);
        assert!(
            text.contains(found) && text.contains("2048 to 8192 bits"),
            "{text}"
        );
    }
}

#[test]
fn inconsistent_keys_are_refused() {
    let mut jwk: serde_json::Value = serde_json::from_str(RSA_JWK).unwrap();
    jwk["qi"] = jwk["dp"].clone();
    let error = SigningKey::from_jwk(&jwk.to_string()).unwrap_err();
    assert!(
        matches!(
            error,
            KeyError::InvalidKey {
                key_type: KeyType::Rsa,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(message(&error).contains("RSA key was rejected"));

    let mut jwk: serde_json::Value = serde_json::from_str(P256_JWK).unwrap();
    let other = SigningKey::generate(Algorithm::Es256, "k").unwrap();
    jwk["x"] = public_jwk(&other)["x"].clone();
    let error = SigningKey::from_jwk(&jwk.to_string()).unwrap_err();
    assert!(
        matches!(
            error,
            KeyError::InvalidKey {
                key_type: KeyType::EcP256,
                ..
            }
        ),
        "{error:?}"
    );
    message(&error);

    let mut jwk: serde_json::Value = serde_json::from_str(ED25519_JWK).unwrap();
    jwk["x"] = public_jwk(&SigningKey::generate(Algorithm::EdDsa, "k").unwrap())["x"].clone();
    let error = SigningKey::from_jwk(&jwk.to_string()).unwrap_err();
    assert!(
        matches!(
            error,
            KeyError::InvalidKey {
                key_type: KeyType::Ed25519,
                ..
            }
        ),
        "{error:?}"
    );
    message(&error);
}

/// `jwk` with `member` replaced by `value` (or removed when `None`).
fn jwk_with(jwk: &str, member: &str, value: Option<serde_json::Value>) -> String {
    let mut jwk: serde_json::Value = serde_json::from_str(jwk).unwrap();
    let object = jwk.as_object_mut().unwrap();
    match value {
        Some(value) => object.insert(member.into(), value),
        None => object.remove(member),
    };
    jwk.to_string()
}

#[test]
fn malformed_jwks_name_the_member() {
    let cases = [
        (jwk_with(RSA_JWK, "kid", None), "kid"),
        (jwk_with(RSA_JWK, "kid", Some("".into())), "kid"),
        (jwk_with(RSA_JWK, "kid", Some(7.into())), "kid"),
        (jwk_with(RSA_JWK, "kty", None), "kty"),
        (jwk_with(RSA_JWK, "d", None), "d"),
        (jwk_with(RSA_JWK, "qi", None), "qi"),
        (jwk_with(RSA_JWK, "n", Some("not base64!".into())), "n"),
        (jwk_with(RSA_JWK, "use", Some("enc".into())), "use"),
        (jwk_with(RSA_JWK, "alg", Some(true.into())), "alg"),
        (jwk_with(P256_JWK, "crv", None), "crv"),
        (jwk_with(P256_JWK, "y", Some("AAAA".into())), "y"),
        (jwk_with(P256_JWK, "d", None), "d"),
        (
            jwk_with(ED25519_JWK, "x", Some(serde_json::json!(["a"]))),
            "x",
        ),
        (jwk_with(ED25519_JWK, "d", Some("".into())), "d"),
        ("{}".to_owned(), "kid"),
    ];
    for (jwk, field) in cases {
        let error = SigningKey::from_jwk(&jwk).unwrap_err();
        let KeyError::MalformedJwk { field: found, .. } = error else {
            panic!("{field}: {error:?}");
        };
        assert_eq!(found, field);
        assert!(message(&error).contains(&format!("`{field}`")));
    }
    let public_only = public_jwk(&SigningKey::from_jwk(P256_JWK).unwrap()).to_string();
    let error = SigningKey::from_jwk(&public_only).unwrap_err();
    assert!(message(&error).contains("only a public key"));
}

#[test]
fn unsupported_jwk_types_and_algorithms_are_refused() {
    let oct = r#"{"kty":"oct","kid":"k","k":"c2VjcmV0"}"#;
    let error = SigningKey::from_jwk(oct).unwrap_err();
    assert_eq!(
        error,
        KeyError::UnsupportedKeyType {
            found: "JWK kty oct".into()
        }
    );
    message(&error);

    let p384 = jwk_with(P256_JWK, "crv", Some("P-384".into()));
    let error = SigningKey::from_jwk(&p384).unwrap_err();
    assert_eq!(
        error,
        KeyError::UnsupportedKeyType {
            found: "JWK curve P-384".into()
        }
    );
    message(&error);

    let x25519 = jwk_with(ED25519_JWK, "crv", Some("X25519".into()));
    assert!(matches!(
        SigningKey::from_jwk(&x25519),
        Err(KeyError::UnsupportedKeyType { .. })
    ));

    let small = jwk_with(
        RSA_JWK,
        "n",
        Some(URL_SAFE_NO_PAD.encode([0xFF; 128]).into()),
    );
    let error = SigningKey::from_jwk(&small).unwrap_err();
    assert_eq!(
        error,
        KeyError::UnsupportedKeyType {
            found: "RSA with a 1024-bit modulus".into()
        }
    );

    let mismatch = jwk_with(RSA_JWK, "alg", Some("PS256".into()));
    let error = SigningKey::from_jwk(&mismatch).unwrap_err();
    assert_eq!(
        error,
        KeyError::AlgorithmMismatch {
            requested: "PS256".into(),
            key_type: KeyType::Rsa,
            expected: Algorithm::Rs256,
        }
    );
    assert!(message(&error).contains("RSA keys sign with RS256"));
}

#[test]
fn invalid_json_reports_the_position_only() {
    let error = SigningKey::from_jwk("{\"kty\": \"RSA\", \"d\": \"secret-value").unwrap_err();
    let KeyError::InvalidJson { document, line, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!((*document, *line), ("JWK", 1));
    let text = message(&error);
    assert!(!text.contains("secret-value"), "{text}");

    let error = KeyFile::parse("[1, 2").unwrap_err();
    assert!(matches!(
        error,
        KeyError::InvalidJson {
            document: "key file",
            ..
        }
    ));
    message(&error);
}

#[test]
fn malformed_key_files_name_the_member() {
    let without = |member: &str| {
        let mut json: serde_json::Value = serde_json::from_str(ZITADEL_APPLICATION).unwrap();
        json.as_object_mut().unwrap().remove(member);
        json.to_string()
    };
    for member in ["type", "keyId", "key", "appId", "clientId"] {
        let error = KeyFile::parse(&without(member)).unwrap_err();
        assert!(
            matches!(error, KeyError::MalformedKeyFile { field, .. } if field == member),
            "{member}: {error:?}"
        );
        assert!(message(&error).contains(&format!("`{member}`")));
    }
    let mut json: serde_json::Value = serde_json::from_str(ZITADEL_SERVICE_ACCOUNT).unwrap();
    json.as_object_mut().unwrap().remove("userId");
    let error = KeyFile::parse(&json.to_string()).unwrap_err();
    assert!(matches!(
        error,
        KeyError::MalformedKeyFile {
            field: "userId",
            ..
        }
    ));

    json["userId"] = "u".into();
    json["key"] = CERTIFICATE.into();
    let error = KeyFile::parse(&json.to_string()).unwrap_err();
    assert_eq!(
        error,
        KeyError::NotAPrivateKey {
            found: "certificate"
        }
    );
}

#[test]
fn unknown_key_file_types_list_the_allowed_ones() {
    let mut json: serde_json::Value = serde_json::from_str(ZITADEL_SERVICE_ACCOUNT).unwrap();
    json["type"] = "machine".into();
    let error = KeyFile::parse(&json.to_string()).unwrap_err();
    assert_eq!(
        error,
        KeyError::UnknownKeyFileType {
            found: "machine".into()
        }
    );
    let text = message(&error);
    assert!(
        text.contains("\"serviceaccount\" or \"application\""),
        "{text}"
    );

    json["type"] = "\u{1b}[31mred".into();
    let error = KeyFile::parse(&json.to_string()).unwrap_err();
    assert_eq!(
        error,
        KeyError::UnknownKeyFileType {
            found: "<non-printable value>".into()
        }
    );
}

#[test]
fn library_failure_messages_follow_the_rules() {
    let errors = [
        KeyError::SigningFailed {
            algorithm: Algorithm::Es256,
        },
        KeyError::GenerationFailed {
            algorithm: Algorithm::Rs256,
        },
        KeyError::EncodingFailed {
            key_type: KeyType::Ed25519,
            format: KeyFormat::Pkcs8,
        },
    ];
    for error in errors {
        assert!(message(&error).contains("crypto library"));
    }
}

#[test]
fn keys_are_shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<SigningKey>();
    send_sync::<PublicKey>();
    send_sync::<KeyFile>();
    send_sync::<KeyRing>();
}

#[test]
fn key_ring_swaps_keys() {
    let ring = KeyRing::new(SigningKey::generate(Algorithm::EdDsa, "old").unwrap());
    let held = ring.current();
    ring.replace(SigningKey::generate(Algorithm::Es256, "new").unwrap());
    assert_eq!(held.key_id(), "old");
    assert_eq!(ring.current().key_id(), "new");
}

// No input makes a parser panic.

mod no_panics {
    use proptest::prelude::*;

    use super::*;

    /// A valid document with up to four bytes replaced and maybe cut short.
    fn mutated(valid: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
        let edits = proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4);
        (edits, any::<prop::sample::Index>(), any::<bool>()).prop_map(move |(edits, cut, cuts)| {
            let mut bytes = valid.to_vec();
            for (index, value) in edits {
                let index = index.index(bytes.len());
                bytes[index] = value;
            }
            if cuts {
                bytes.truncate(cut.index(bytes.len()));
            }
            bytes
        })
    }

    fn der(pem: &str) -> &'static [u8] {
        Box::leak(pem_body(pem).into_boxed_slice())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn der_parsers(
            pkcs8 in mutated(der(P256_PKCS8)),
            pkcs1 in mutated(der(RSA_PKCS1)),
            sec1 in mutated(der(P256_SEC1)),
            ed in mutated(der(ED25519_PKCS8)),
        ) {
            let _ = SigningKey::from_der_pkcs8(&pkcs8, "kid");
            let _ = SigningKey::from_der_pkcs8(&ed, "kid");
            let _ = SigningKey::from_der_pkcs8(&pkcs1, "kid");
            let _ = SigningKey::from_der_pkcs1(&pkcs1, "kid");
            let _ = SigningKey::from_der_sec1(&sec1, "kid");
        }

        #[test]
        fn text_parsers(
            pem in mutated(P256_SEC1.as_bytes()),
            jwk in mutated(P256_JWK.as_bytes()),
            file in mutated(ZITADEL_APPLICATION.as_bytes()),
            noise in ".{0,200}",
        ) {
            for bytes in [&pem, &jwk, &file, &noise.clone().into_bytes()] {
                let text = String::from_utf8_lossy(bytes);
                let _ = SigningKey::from_pem(&text, "kid");
                let _ = SigningKey::from_jwk(&text);
                let _ = PublicKey::from_jwk(&text);
                let _ = KeyFile::parse(&text);
            }
        }
    }
}
