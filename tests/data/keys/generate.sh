#!/bin/sh
# Regenerates the TEST-ONLY keys in this directory. These keys are public:
# never register them at a real provider. Needs openssl 3 and python3 with
# the `cryptography` package (an implementation independent of aws-lc-rs,
# used to write the JWKs and reference signatures the tests compare with).
set -eu
cd "$(dirname "$0")"

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out test-only-rsa2048-pkcs8.pem
openssl pkey -in test-only-rsa2048-pkcs8.pem -traditional -out test-only-rsa2048-pkcs1.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out test-only-p256-pkcs8.pem
openssl ec -in test-only-p256-pkcs8.pem -out test-only-p256-sec1.pem
openssl genpkey -algorithm ED25519 -out test-only-ed25519-pkcs8.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out test-only-p384-pkcs8.pem
openssl ec -in test-only-p384-pkcs8.pem -out test-only-p384-sec1.pem
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out test-only-rsa1024-pkcs8.pem
openssl pkey -in test-only-rsa1024-pkcs8.pem -traditional -out test-only-rsa1024-pkcs1.pem
openssl genpkey -algorithm ED448 -out test-only-ed448-pkcs8.pem
openssl pkey -in test-only-rsa2048-pkcs8.pem -pubout -out test-only-rsa2048-public.pem
openssl req -new -x509 -key test-only-rsa2048-pkcs8.pem -subj /CN=test-only -days 3650 \
    -out test-only-certificate.pem
openssl pkcs8 -topk8 -in test-only-p256-pkcs8.pem -passout pass:test-only \
    -out test-only-encrypted-pkcs8.pem
openssl pkey -in test-only-rsa2048-pkcs8.pem -traditional -aes128 -passout pass:test-only \
    -out test-only-encrypted-pkcs1.pem

python3 - <<'PY'
import base64, json
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, utils

def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

def num(value, length=None):
    length = length or (value.bit_length() + 7) // 8
    return b64(value.to_bytes(length, "big"))

def load(name):
    with open(name, "rb") as f:
        return serialization.load_pem_private_key(f.read(), None)

message = b"test-only signing input"
reference = {"message": b64(message)}

rsa = load("test-only-rsa2048-pkcs8.pem")
n = rsa.private_numbers()
rsa_jwk = {"kty": "RSA", "kid": "test-only-rsa", "alg": "RS256", "use": "sig",
           "n": num(n.public_numbers.n), "e": num(n.public_numbers.e), "d": num(n.d),
           "p": num(n.p), "q": num(n.q), "dp": num(n.dmp1), "dq": num(n.dmq1), "qi": num(n.iqmp)}
reference["RS256"] = b64(rsa.sign(message, padding.PKCS1v15(), hashes.SHA256()))

p256 = load("test-only-p256-pkcs8.pem")
e = p256.private_numbers()
ec_jwk = {"kty": "EC", "kid": "test-only-p256", "crv": "P-256",
          "x": num(e.public_numbers.x, 32), "y": num(e.public_numbers.y, 32),
          "d": num(e.private_value, 32)}
r, s = utils.decode_dss_signature(p256.sign(message, ec.ECDSA(hashes.SHA256())))
reference["ES256"] = b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

ed = load("test-only-ed25519-pkcs8.pem")
raw = serialization.Encoding.Raw
ed_jwk = {"kty": "OKP", "kid": "test-only-ed25519", "crv": "Ed25519", "alg": "EdDSA",
          "x": b64(ed.public_key().public_bytes(raw, serialization.PublicFormat.Raw)),
          "d": b64(ed.private_bytes(raw, serialization.PrivateFormat.Raw,
                                    serialization.NoEncryption()))}
reference["EdDSA"] = b64(ed.sign(message))

for name, jwk in [("rsa", rsa_jwk), ("p256", ec_jwk), ("ed25519", ed_jwk)]:
    with open(f"test-only-{name}-jwk.json", "w") as f:
        json.dump(jwk, f, indent=2)
        f.write("\n")

with open("test-only-rsa2048-pkcs1.pem") as f:
    pkcs1 = f.read()
with open("test-only-zitadel-serviceaccount.json", "w") as f:
    json.dump({"type": "serviceaccount", "keyId": "100000000000000001", "key": pkcs1,
               "expirationDate": "9999-12-31T23:59:59Z", "userId": "200000000000000002"}, f)
with open("test-only-zitadel-application.json", "w") as f:
    json.dump({"type": "application", "keyId": "100000000000000003", "key": pkcs1,
               "appId": "300000000000000004", "clientId": "300000000000000004@test-only"}, f)
with open("test-only-reference-signatures.json", "w") as f:
    json.dump(reference, f, indent=2)
    f.write("\n")
PY
chmod 600 ./*.pem ./*.json
