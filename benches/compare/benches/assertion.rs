//! Building one private key JWT assertion, per algorithm:
//!
//! - `floor`: header and claims serialised, signed with a key parsed once
//!   (aws-lc-rs behind jsonwebtoken's `JwtSigner` trait), base64url;
//! - `sign_only`: the signature alone over an input of the same length (what
//!   no assertion builder can avoid);
//! - `jsonwebtoken_encode`: `jsonwebtoken::encode` with an `EncodingKey`
//!   parsed once from PEM (it parses the DER again on every call);
//! - `ours`: `service_auth::assertion::sign` with a `SigningKey` parsed once.
//!
//! All build the same claims (`iss`, `sub`, `aud`, `iat`, `exp`, `jti`).

use std::hint::black_box;

use compare::floor::{self, Claims, PreParsed};
use compare::keys::{Alg, Key};
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::signature::Signer as _;

const AUD: &str = "https://issuer.bench.invalid";

fn encoding_key(key: &Key) -> jsonwebtoken::EncodingKey {
    let pem = key.pkcs8_pem.as_bytes();
    // Invariant: the key was generated in this process.
    match key.alg {
        Alg::Rs256 => jsonwebtoken::EncodingKey::from_rsa_pem(pem),
        Alg::Es256 => jsonwebtoken::EncodingKey::from_ec_pem(pem),
        Alg::EdDsa => jsonwebtoken::EncodingKey::from_ed_pem(pem),
    }
    .expect("jsonwebtoken key")
}

fn bench_alg(c: &mut Criterion, alg: Alg) {
    let key = Key::generate(alg);
    let claims = Claims::new(AUD, 42);
    let header = floor::header(alg);
    let signer = PreParsed::new(&key);
    let jwt_key = encoding_key(&key);

    // Every contender must produce a JWS the others would accept.
    let reference = floor::build_jwt(&signer, &header, &claims).expect("floor jwt");
    let encoded = jsonwebtoken::encode(&header, &claims, &jwt_key).expect("jsonwebtoken jwt");
    assert_eq!(reference.split('.').count(), 3);
    assert_eq!(encoded.split('.').count(), 3);
    let signing_input_len = reference.rfind('.').unwrap_or(reference.len());
    let input = vec![b'a'; signing_input_len];

    let mut group = c.benchmark_group(format!("assertion/{}", alg.name()));
    group.bench_function("floor", |b| {
        b.iter(|| black_box(floor::build_jwt(&signer, &header, black_box(&claims)).unwrap()))
    });
    group.bench_function("sign_only", |b| {
        b.iter(|| black_box(signer.try_sign(black_box(&input)).unwrap()))
    });
    group.bench_function("jsonwebtoken_encode", |b| {
        b.iter(|| black_box(jsonwebtoken::encode(&header, black_box(&claims), &jwt_key).unwrap()))
    });
    #[cfg(feature = "ours")]
    ours::bench(&mut group, &key, &claims);
    group.finish();
}

#[cfg(feature = "ours")]
mod ours {
    use std::hint::black_box;

    use compare::floor::Claims;
    use compare::keys::Key;
    use criterion::BenchmarkGroup;
    use criterion::measurement::WallTime;
    use service_auth::assertion::{self, AssertionClaims};
    use service_auth::credentials::SigningKey;

    pub fn bench(group: &mut BenchmarkGroup<'_, WallTime>, key: &Key, claims: &Claims<'_>) {
        // Invariant: the key was generated in this process.
        let signing_key = SigningKey::from_pem(&key.pkcs8_pem, "bench-key-1").expect("our key");
        let claims = AssertionClaims {
            iss: claims.iss.into(),
            sub: claims.sub.into(),
            aud: claims.aud.into(),
            iat: claims.iat,
            exp: claims.exp,
            jti: Some(claims.jti.clone()),
        };
        let signed = assertion::sign(&signing_key, &claims).expect("our assertion");
        assertion::verify(signed.secret(), &signing_key.public_key()).expect("verifies");
        group.bench_function("ours", |b| {
            b.iter(|| black_box(assertion::sign(&signing_key, black_box(&claims)).unwrap()))
        });
    }
}

fn assertion(c: &mut Criterion) {
    for alg in Alg::ALL {
        bench_alg(c, alg);
    }
}

criterion_group! {
    name = benches;
    config = compare::criterion();
    targets = assertion
}
criterion_main!(benches);
