// Test-only OAuth 2.0 / OpenID Connect authorization server for the service-auth interop tests.
//
// It wraps panva's `oidc-provider` (a certified OpenID Connect implementation) with:
// - a throw-away test CA and a server certificate for 127.0.0.1 / localhost,
// - freshly generated keys for service users (RFC 7523 §2.1 JWT bearer grant) and for
//   private key JWT clients (RFC 7523 §2.2), written as PKCS#8 PEM files plus a JSON manifest,
// - static clients for client_secret_basic, client_secret_post and private_key_jwt,
// - a JWT bearer grant handler that checks the assertion the way ZITADEL does,
// - a protected resource (GET /resource) and a test control API (/_test/...).
//
// Contract (ready line, manifest, client ids, error codes): see README.md next to this file.
// Never point this at anything but 127.0.0.1: every secret in it is a test secret.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import process from 'node:process';

// oidc-provider prints notices through console.info / console.log. Stdout carries exactly one
// line (the ready line, written with process.stdout.write), so everything else goes to stderr.
console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);

const { default: Provider, errors } = await import('oidc-provider');
const { default: forge } = await import('node-forge');

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const RESOURCE = 'urn:service-auth:interop:api';
const SCOPES = ['read', 'write'];
// The JWT bearer grant also accepts ZITADEL's default scope, so a ZITADEL profile works unchanged.
const JWT_BEARER_EXTRA_SCOPES = ['openid', 'urn:zitadel:iam:org:project:id:zitadel:aud'];
const STATIC_PAT = 'pat-interop-static-token-1';
const SERVICE_USER = 'svc-user-1';
const JWT_BEARER_CLIENT = 'jwt-bearer-client';
// RFC 6749 Appendix A.2: client_secret = *VSCHAR (%x20-7E); oidc-provider rejects anything else,
// so no non-ASCII character here. Every RFC 6749 §2.3.1 form-urlencoding trap is in it instead:
// ':' (Basic separator), '%' followed by non-hex, '+', ' ', '/', '&', '=', '?', '#', '~'.
const BASIC_SECRET = 's3cr3t:with%special+chars and spaces/&=?#~';
const POST_SECRET = 'p0st-s3cr3t with+plus&amp=equals%25';
const MAX_BODY = 64 * 1024;
const IAT_FUTURE_LEEWAY = 1; // seconds, as ZITADEL
const IAT_MAX_AGE = 3600; // seconds, as ZITADEL

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------

function usage(message) {
  process.stderr.write(`${message}\nusage: node server.mjs --dir <tmpdir> [--plain-http] [--ttl <seconds>] [--port <port>] [--ignore-stdin]\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const options = { dir: undefined, plainHttp: false, ttl: 60, port: 0, watchStdin: true };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    const value = () => {
      i += 1;
      if (i >= argv.length) usage(`${arg} needs a value`);
      return argv[i];
    };
    switch (arg) {
      case '--dir': options.dir = value(); break;
      case '--plain-http': options.plainHttp = true; break;
      case '--ttl': options.ttl = Number(value()); break;
      case '--port': options.port = Number(value()); break;
      case '--ignore-stdin': options.watchStdin = false; break;
      default: usage(`unknown argument ${arg}`);
    }
  }
  if (!options.dir) usage('--dir is required');
  if (!Number.isSafeInteger(options.ttl) || options.ttl < 1) usage('--ttl must be a positive integer (seconds)');
  if (!Number.isSafeInteger(options.port) || options.port < 0 || options.port > 65535) usage('--port must be 0..65535');
  options.dir = path.resolve(options.dir);
  return options;
}

// ---------------------------------------------------------------------------------------------
// Keys, certificates and files
// ---------------------------------------------------------------------------------------------

function generateKeyPair(kind) {
  const [type, opts] = {
    RSA: ['rsa', { modulusLength: 2048 }],
    EC: ['ec', { namedCurve: 'P-256' }],
    Ed25519: ['ed25519', {}],
  }[kind];
  return new Promise((resolve, reject) => {
    crypto.generateKeyPair(type, opts, (err, publicKey, privateKey) => (
      err ? reject(err) : resolve({ publicKey, privateKey })
    ));
  });
}

function writeSecretFile(file, contents) {
  fs.writeFileSync(file, contents, { mode: 0o600 });
  fs.chmodSync(file, 0o600); // writeFileSync keeps the mode of an existing file
}

function writePublicFile(file, contents) {
  fs.writeFileSync(file, contents, { mode: 0o644 });
}

function pkcs8Pem(privateKey) {
  return privateKey.export({ type: 'pkcs8', format: 'pem' });
}

function publicJwk(publicKey, kid, alg) {
  return { ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
}

function randomSerial() {
  // Positive, 16 bytes: a leading 0x01 keeps the DER INTEGER positive and of fixed length.
  return `01${crypto.randomBytes(15).toString('hex')}`;
}

// Node 20's crypto can parse X.509 (crypto.X509Certificate) but cannot create certificates, so
// node-forge (zero dependencies) builds and signs them. Keys come from node's crypto (fast);
// forge only needs RSA keys, which is why the CA and the server key are RSA-2048.
function makeCertificates(caKeys, serverKeys) {
  const { pki } = forge;
  const notBefore = new Date(Date.now() - 60 * 60 * 1000);
  const notAfter = new Date(Date.now() + 7 * 24 * 60 * 60 * 1000);
  const toForgePublic = (k) => pki.publicKeyFromPem(k.export({ type: 'spki', format: 'pem' }));
  const toForgePrivate = (k) => pki.privateKeyFromPem(k.export({ type: 'pkcs1', format: 'pem' }));

  const ca = pki.createCertificate();
  ca.publicKey = toForgePublic(caKeys.publicKey);
  ca.serialNumber = randomSerial();
  ca.validity.notBefore = notBefore;
  ca.validity.notAfter = notAfter;
  const caName = [
    { name: 'commonName', value: 'service-auth interop test CA' },
    { name: 'organizationName', value: 'service-auth tests' },
  ];
  ca.setSubject(caName);
  ca.setIssuer(caName);
  ca.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  ca.sign(toForgePrivate(caKeys.privateKey), forge.md.sha256.create());

  const leaf = pki.createCertificate();
  leaf.publicKey = toForgePublic(serverKeys.publicKey);
  leaf.serialNumber = randomSerial();
  leaf.validity.notBefore = notBefore;
  leaf.validity.notAfter = notAfter;
  leaf.setSubject([{ name: 'commonName', value: '127.0.0.1' }]);
  leaf.setIssuer(caName);
  leaf.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [
        { type: 7, ip: '127.0.0.1' },
        { type: 2, value: 'localhost' },
      ],
    },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: ca.generateSubjectKeyIdentifier().getBytes() },
  ]);
  leaf.sign(toForgePrivate(caKeys.privateKey), forge.md.sha256.create());

  return { caPem: pki.certificateToPem(ca), certPem: pki.certificateToPem(leaf) };
}

// ---------------------------------------------------------------------------------------------
// Storage: an unbounded in-memory adapter (the bundled one is an LRU of 1000 entries, which a
// load test would overflow, and it prints a warning). `revokeAll` empties the token stores.
// ---------------------------------------------------------------------------------------------

const stores = new Map();

function storeFor(name) {
  if (!stores.has(name)) stores.set(name, new Map());
  return stores.get(name);
}

class MemoryAdapter {
  constructor(name) {
    this.store = storeFor(name);
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity;
    this.store.set(id, { payload: structuredClone(payload), expiresAt });
  }

  async find(id) {
    const entry = this.store.get(id);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.store.delete(id);
      return undefined;
    }
    return structuredClone(entry.payload);
  }

  async findByUserCode() { return undefined; }

  async findByUid() { return undefined; }

  async consume(id) {
    const entry = this.store.get(id);
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    this.store.delete(id);
  }

  async revokeByGrantId() {}
}

function revokeAllTokens() {
  let revoked = 0;
  for (const name of ['ClientCredentials', 'AccessToken']) {
    const store = stores.get(name);
    if (store) {
      revoked += store.size;
      store.clear();
    }
  }
  return revoked;
}

function purgeExpired() {
  const now = Date.now();
  for (const store of stores.values()) {
    for (const [id, entry] of store) {
      if (entry.expiresAt <= now) store.delete(id);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Counters
// ---------------------------------------------------------------------------------------------

function emptyCounters() {
  return {
    token_requests: {
      total: 0,
      succeeded: 0,
      failed: 0,
      by_grant_type: {},
      by_client: {},
      by_error: {},
      issued_by_service_user: {},
    },
    discovery_requests: 0,
    resource_requests: { total: 0, accepted: 0, rejected: 0 },
  };
}

let counters = emptyCounters();

function bump(map, key) {
  map[key] = (map[key] ?? 0) + 1;
}

// ---------------------------------------------------------------------------------------------
// JWT bearer grant (RFC 7523 §2.1), checked as ZITADEL checks its "JWT profile" assertions
// ---------------------------------------------------------------------------------------------

function b64urlJson(part) {
  if (typeof part !== 'string' || !/^[A-Za-z0-9_-]*$/.test(part)) throw new Error('not base64url');
  const value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('not a JSON object');
  return value;
}

function verifySignature(alg, key, signingInput, signature) {
  const data = Buffer.from(signingInput, 'ascii');
  try {
    switch (alg) {
      case 'RS256':
        return crypto.verify('sha256', data, key, signature);
      case 'ES256':
        // JWS carries ECDSA signatures as r || s (RFC 7518 §3.4), not DER.
        return signature.length === 64
          && crypto.verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature);
      case 'EdDSA':
      case 'Ed25519':
        return crypto.verify(null, data, key, signature);
      default:
        return false;
    }
  } catch {
    return false; // malformed signature bytes: a failed verification, not a server error
  }
}

function grantError(description) {
  return new errors.CustomOIDCProviderError('invalid_grant', description);
}

function makeJwtBearerHandler({ serviceKeys, issuer, ttl }) {
  return async function jwtBearerHandler(ctx) {
    const { params, client, provider } = ctx.oidc;
    if (typeof params.assertion !== 'string' || params.assertion === '') {
      throw new errors.InvalidRequest("missing required parameter 'assertion'");
    }

    const parts = params.assertion.split('.');
    if (parts.length !== 3) throw grantError('assertion is not a JWS compact serialization');
    let header;
    let claims;
    try {
      header = b64urlJson(parts[0]);
      claims = b64urlJson(parts[1]);
    } catch {
      throw grantError('assertion header or claims are not base64url-encoded JSON objects');
    }

    if (typeof header.kid !== 'string' || header.kid === '') throw grantError('assertion has no kid header');
    const key = serviceKeys.get(header.kid);
    if (!key) throw grantError('unknown key id (kid)');
    if (!key.algs.includes(header.alg)) {
      throw grantError(`alg ${String(header.alg)} does not match the key registered under this kid (expected ${key.algs.join(' or ')})`);
    }
    if (!/^[A-Za-z0-9_-]*$/.test(parts[2])
      || !verifySignature(header.alg, key.publicKey, `${parts[0]}.${parts[1]}`, Buffer.from(parts[2], 'base64url'))) {
      throw grantError('assertion signature is invalid');
    }

    if (claims.iss !== key.userId) throw grantError('iss must be the id of the service user that owns the key');
    if (claims.sub !== key.userId) throw grantError('sub must be the id of the service user that owns the key');
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!audiences.includes(issuer)) throw grantError(`aud must contain the issuer ${issuer}`);

    const now = Date.now() / 1000;
    if (typeof claims.exp !== 'number') throw grantError('exp is missing or not a number');
    if (claims.exp <= now) throw grantError('assertion expired');
    if (typeof claims.iat !== 'number') throw grantError('iat is missing or not a number');
    if (claims.iat > now + IAT_FUTURE_LEEWAY) throw grantError('assertion issued in the future');
    if (claims.iat < now - IAT_MAX_AGE) throw grantError('assertion issued too long ago (iat older than 1 h)');

    const requested = params.scope ? params.scope.split(' ') : [];
    const allowed = new Set([...SCOPES, ...JWT_BEARER_EXTRA_SCOPES]);
    const rejected = requested.filter((s) => !allowed.has(s));
    if (rejected.length) throw new errors.InvalidScope('requested scope is not allowed', rejected.join(' '));

    const token = new provider.ClientCredentials({
      client,
      scope: requested.length ? [...new Set(requested)].join(' ') : undefined,
      extra: { sub: key.userId, grant_type: JWT_BEARER },
    });
    token.resourceServer = new provider.ResourceServer(RESOURCE, resourceServerInfo(ttl));
    ctx.oidc.entity('ClientCredentials', token);
    const value = await token.save();
    bump(counters.token_requests.issued_by_service_user, key.userId);

    ctx.body = {
      access_token: value,
      expires_in: token.expiration,
      token_type: token.tokenType,
      ...(token.scope ? { scope: token.scope } : undefined),
    };
  };
}

function resourceServerInfo(ttl) {
  return {
    scope: SCOPES.join(' '),
    audience: RESOURCE,
    accessTokenTTL: ttl,
    accessTokenFormat: 'opaque',
  };
}

// ---------------------------------------------------------------------------------------------
// Front middleware: /resource, /_test/*, token request accounting
// ---------------------------------------------------------------------------------------------

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function basicClientId(authorization) {
  const [scheme, value] = (authorization ?? '').split(' ');
  if (scheme?.toLowerCase() !== 'basic' || !value) return undefined;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  try {
    return decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, '%20'));
  } catch {
    return undefined;
  }
}

function assertionSubject(assertion) {
  try {
    return b64urlJson(assertion.split('.')[1]).sub;
  } catch {
    return undefined;
  }
}

function json(ctx, status, body) {
  ctx.status = status;
  ctx.type = 'application/json';
  ctx.set('Cache-Control', 'no-store');
  ctx.body = JSON.stringify(body);
}

async function resourceEndpoint(ctx, provider) {
  counters.resource_requests.total += 1;
  const reject = (status, error, description) => {
    counters.resource_requests.rejected += 1;
    // RFC 6750 §3: no error code when the request carried no bearer token at all (§3.1).
    const challenge = error
      ? `Bearer realm="service-auth-interop", error="${error}", error_description="${description}"`
      : 'Bearer realm="service-auth-interop"';
    ctx.set('WWW-Authenticate', challenge);
    json(ctx, status, error ? { error, error_description: description } : { error: 'unauthorized' });
  };

  if (ctx.method !== 'GET') {
    counters.resource_requests.rejected += 1;
    ctx.set('Allow', 'GET');
    json(ctx, 405, { error: 'method_not_allowed' });
    return;
  }
  const match = /^Bearer +([^ ]+) *$/i.exec(ctx.get('authorization'));
  if (!match) {
    reject(401);
    return;
  }
  const value = match[1];
  if (value === STATIC_PAT) {
    counters.resource_requests.accepted += 1;
    json(ctx, 200, { ok: true, token_kind: 'personal_access_token', sub: SERVICE_USER });
    return;
  }
  const token = await provider.ClientCredentials.find(value);
  // `find` allows oidc-provider's clock tolerance past `exp`; the resource is strict.
  if (!token || typeof token.exp !== 'number' || token.exp <= Date.now() / 1000) {
    reject(401, 'invalid_token', 'the access token is unknown, expired or revoked');
    return;
  }
  counters.resource_requests.accepted += 1;
  json(ctx, 200, {
    ok: true,
    token_kind: 'access_token',
    client_id: token.clientId,
    sub: token.extra?.sub ?? token.clientId,
    scope: token.scope ?? null,
    aud: token.aud ?? null,
    exp: token.exp,
  });
}

async function controlEndpoint(ctx) {
  const route = `${ctx.method} ${ctx.path}`;
  switch (route) {
    case 'GET /_test/counters':
      json(ctx, 200, counters);
      return;
    case 'POST /_test/reset-counters':
      counters = emptyCounters();
      json(ctx, 200, { ok: true });
      return;
    case 'POST /_test/revoke-all':
      json(ctx, 200, { ok: true, revoked: revokeAllTokens() });
      return;
    default:
      json(ctx, 404, { error: 'not_found' });
  }
}

// Reads the token request body before oidc-provider does (oidc-provider then uses the string in
// `req.body`), to count requests and to let a JWT bearer grant request without any client
// authentication through as the public client `jwt-bearer-client` (ZITADEL needs none).
async function tokenEndpoint(ctx, next, issuer) {
  let form = new URLSearchParams();
  if (ctx.is('application/x-www-form-urlencoded')) {
    let raw;
    try {
      raw = await readBody(ctx.req);
    } catch {
      json(ctx, 400, { error: 'invalid_request', error_description: 'failed to read the request body' });
      return;
    }
    form = new URLSearchParams(raw);
    const anonymous = form.get('grant_type') === JWT_BEARER
      && !form.has('client_id') && !form.has('client_secret') && !form.has('client_assertion')
      && ctx.get('authorization') === '';
    ctx.req.body = anonymous ? `${raw}${raw ? '&' : ''}client_id=${JWT_BEARER_CLIENT}` : raw;
  }

  try {
    if (!secretMethodMatches(ctx, form)) {
      // oidc-provider lets any client_secret_* client use either secret method; real providers
      // (Okta, Keycloak with "client secret" vs "signed JWT") hold the client to its registered
      // method, so this server does too: the same answer as for a wrong secret.
      if (ctx.get('authorization')) {
        ctx.set('WWW-Authenticate', `Basic realm="${issuer}", error="invalid_client", error_description="client authentication failed"`);
      }
      json(ctx, 401, { error: 'invalid_client', error_description: 'client authentication failed' });
      return;
    }
    await next();
  } finally {
    const t = counters.token_requests;
    t.total += 1;
    const clientId = ctx.oidc?.client?.clientId
      ?? form.get('client_id')
      ?? basicClientId(ctx.get('authorization'))
      ?? (form.has('client_assertion') ? assertionSubject(form.get('client_assertion')) : undefined)
      ?? (form.get('grant_type') === JWT_BEARER ? JWT_BEARER_CLIENT : '(unknown)');
    bump(t.by_grant_type, form.get('grant_type') ?? '(none)');
    bump(t.by_client, clientId);
    if (ctx.status === 200) {
      t.succeeded += 1;
    } else {
      t.failed += 1;
      let error = '(non-json)';
      try {
        const body = typeof ctx.body === 'string' ? JSON.parse(ctx.body) : ctx.body;
        if (typeof body?.error === 'string') error = body.error;
      } catch { /* keep '(non-json)' */ }
      bump(t.by_error, error);
    }
  }
}

const SECRET_METHODS = new Map([
  ['basic-client', 'client_secret_basic'],
  ['post-client', 'client_secret_post'],
]);

function secretMethodMatches(ctx, form) {
  let used;
  let clientId;
  if (form.has('client_secret')) {
    used = 'client_secret_post';
    clientId = form.get('client_id');
  } else if (/^basic /i.test(ctx.get('authorization'))) {
    used = 'client_secret_basic';
    clientId = basicClientId(ctx.get('authorization'));
  } else {
    return true;
  }
  const registered = SECRET_METHODS.get(clientId);
  return registered === undefined || registered === used;
}

function frontMiddleware(provider) {
  return async function front(ctx, next) {
    if (ctx.path === '/resource') {
      await resourceEndpoint(ctx, provider);
    } else if (ctx.path.startsWith('/_test/')) {
      await controlEndpoint(ctx);
    } else if (ctx.path === '/token' && ctx.method === 'POST') {
      await tokenEndpoint(ctx, next, provider.issuer);
    } else {
      if (ctx.path === '/.well-known/openid-configuration' && ctx.method === 'GET') {
        counters.discovery_requests += 1;
      }
      await next();
    }
  };
}

// ---------------------------------------------------------------------------------------------
// Provider
// ---------------------------------------------------------------------------------------------

function makeProvider({ issuer, ttl, providerJwk, clients }) {
  const provider = new Provider(issuer, {
    adapter: MemoryAdapter,
    clients,
    // Only needed to satisfy oidc-provider (these clients never receive an ID token).
    jwks: { keys: [providerJwk] },
    clientDefaults: {
      grant_types: ['client_credentials'],
      id_token_signed_response_alg: 'ES256',
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
    enabledJWA: {
      clientAuthSigningAlgValues: ['RS256', 'ES256', 'EdDSA', 'Ed25519'],
    },
    scopes: ['openid', ...SCOPES],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => RESOURCE,
        useGrantedResource: async () => false,
        getResourceServerInfo: async (ctx, resource) => {
          if (resource !== RESOURCE) throw new errors.InvalidTarget();
          // oidc-provider silently drops unknown scopes (RFC 6749 §3.3 allows that); this server
          // rejects them like Keycloak and Okta do, so the client sees invalid_scope.
          const requested = ctx.oidc.params.scope ? ctx.oidc.params.scope.split(' ') : [];
          const rejected = requested.filter((s) => !SCOPES.includes(s));
          if (rejected.length) throw new errors.InvalidScope('requested scope is not allowed', rejected.join(' '));
          return resourceServerInfo(ttl);
        },
      },
    },
    ttl: {
      ClientCredentials: () => ttl,
      AccessToken: () => ttl,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: 3600,
      Interaction: 3600,
      Session: 3600,
      Grant: 3600,
    },
    // Keeps the service user id set by the JWT bearer grant on the stored token.
    extraTokenClaims: async (_ctx, token) => token.extra,
    renderError: async (ctx, out) => {
      ctx.type = 'application/json';
      ctx.body = out;
    },
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  });
  return provider;
}

function staticClients(clientKeys) {
  const base = { response_types: [], redirect_uris: [], scope: SCOPES.join(' ') };
  return [
    {
      ...base,
      client_id: 'basic-client',
      client_secret: BASIC_SECRET,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials', JWT_BEARER],
    },
    {
      ...base,
      client_id: 'post-client',
      client_secret: POST_SECRET,
      token_endpoint_auth_method: 'client_secret_post',
      grant_types: ['client_credentials'],
    },
    ...clientKeys.map((k) => ({
      ...base,
      client_id: k.clientId,
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: k.alg,
      jwks: { keys: [k.publicJwk] },
      grant_types: ['client_credentials'],
    })),
    {
      ...base,
      client_id: JWT_BEARER_CLIENT,
      token_endpoint_auth_method: 'none',
      grant_types: [JWT_BEARER],
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

async function main() {
  const options = parseArgs(process.argv.slice(2));
  fs.mkdirSync(options.dir, { recursive: true, mode: 0o700 });
  const file = (name) => path.join(options.dir, name);

  const [caKeys, serverKeys, providerKeys, svcRsa, svcEc, svcEd, cliRsa, cliEc, cliEd, rogueEc] = await Promise.all([
    generateKeyPair('RSA'), generateKeyPair('RSA'), generateKeyPair('EC'),
    generateKeyPair('RSA'), generateKeyPair('EC'), generateKeyPair('Ed25519'),
    generateKeyPair('RSA'), generateKeyPair('EC'), generateKeyPair('Ed25519'),
    generateKeyPair('EC'),
  ]);

  let caFile = null;
  let tls;
  if (!options.plainHttp) {
    const { caPem, certPem } = makeCertificates(caKeys, serverKeys);
    caFile = file('ca.pem');
    writePublicFile(caFile, caPem);
    writePublicFile(file('server-cert.pem'), certPem);
    const keyPem = pkcs8Pem(serverKeys.privateKey);
    writeSecretFile(file('server-key.pem'), keyPem);
    tls = { key: keyPem, cert: certPem };
  }

  // Service user keys (JWT bearer grant) and private key JWT client keys.
  const serviceKeyDefs = [
    { kid: `${SERVICE_USER}-rs256`, alg: 'RS256', algs: ['RS256'], pair: svcRsa },
    { kid: `${SERVICE_USER}-es256`, alg: 'ES256', algs: ['ES256'], pair: svcEc },
    { kid: `${SERVICE_USER}-eddsa`, alg: 'EdDSA', algs: ['EdDSA', 'Ed25519'], pair: svcEd },
  ];
  const serviceKeys = new Map();
  const manifestServiceKeys = {};
  for (const d of serviceKeyDefs) {
    const keyFile = file(`${d.kid}.pem`);
    writeSecretFile(keyFile, pkcs8Pem(d.pair.privateKey));
    serviceKeys.set(d.kid, { userId: SERVICE_USER, algs: d.algs, publicKey: d.pair.publicKey });
    manifestServiceKeys[d.alg] = {
      kid: d.kid,
      alg: d.alg,
      private_key_file: keyFile,
      public_jwk: publicJwk(d.pair.publicKey, d.kid, d.alg),
    };
  }
  // ZITADEL's service account key file carries a PKCS#1 RSA key.
  const zitadelFile = file(`${SERVICE_USER}-rs256.zitadel.json`);
  writeSecretFile(zitadelFile, `${JSON.stringify({
    type: 'serviceaccount',
    keyId: `${SERVICE_USER}-rs256`,
    key: svcRsa.privateKey.export({ type: 'pkcs1', format: 'pem' }),
    expirationDate: '2099-01-01T00:00:00Z',
    userId: SERVICE_USER,
  }, null, 2)}\n`);
  manifestServiceKeys.RS256.zitadel_key_file = zitadelFile;

  const clientKeys = [
    { clientId: 'pkjwt-rsa', kid: 'pkjwt-rsa-key-1', alg: 'RS256', pair: cliRsa },
    { clientId: 'pkjwt-ec', kid: 'pkjwt-ec-key-1', alg: 'ES256', pair: cliEc },
    { clientId: 'pkjwt-ed', kid: 'pkjwt-ed-key-1', alg: 'EdDSA', pair: cliEd },
  ].map((k) => {
    const keyFile = file(`${k.clientId}.pem`);
    writeSecretFile(keyFile, pkcs8Pem(k.pair.privateKey));
    return { ...k, keyFile, publicJwk: publicJwk(k.pair.publicKey, k.kid, k.alg) };
  });
  const rsaAppFile = file('pkjwt-rsa.zitadel.json');
  writeSecretFile(rsaAppFile, `${JSON.stringify({
    type: 'application',
    keyId: 'pkjwt-rsa-key-1',
    key: cliRsa.privateKey.export({ type: 'pkcs1', format: 'pem' }),
    expirationDate: '2099-01-01T00:00:00Z',
    appId: 'pkjwt-rsa',
    clientId: 'pkjwt-rsa',
  }, null, 2)}\n`);
  const rogueFile = file('rogue-es256.pem');
  writeSecretFile(rogueFile, pkcs8Pem(rogueEc.privateKey));

  // Listen first (port 0): the issuer contains the port, and the provider needs the issuer.
  let handler = (_req, res) => { res.statusCode = 503; res.end(); };
  const server = options.plainHttp
    ? http.createServer((req, res) => handler(req, res))
    : https.createServer(tls, (req, res) => handler(req, res));
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  const issuer = `${options.plainHttp ? 'http' : 'https'}://127.0.0.1:${port}`;

  const providerJwk = { ...providerKeys.privateKey.export({ format: 'jwk' }), kid: 'provider-es256', alg: 'ES256', use: 'sig' };
  const provider = makeProvider({
    issuer,
    ttl: options.ttl,
    providerJwk,
    clients: staticClients(clientKeys),
  });
  provider.registerGrantType(JWT_BEARER, makeJwtBearerHandler({ serviceKeys, issuer, ttl: options.ttl }), ['assertion', 'scope']);
  provider.use(frontMiddleware(provider));
  provider.on('server_error', (_ctx, err) => console.error('oidc-provider server_error:', err));
  handler = provider.callback();

  const manifestFile = file('manifest.json');
  const tokenEndpoint = `${issuer}/token`;
  const manifest = {
    format: 1,
    issuer,
    port,
    discovery_url: `${issuer}/.well-known/openid-configuration`,
    token_endpoint: tokenEndpoint,
    resource_url: `${issuer}/resource`,
    ca_file: caFile,
    access_token_ttl_seconds: options.ttl,
    resource_indicator: RESOURCE,
    allowed_scopes: SCOPES,
    static_pat: STATIC_PAT,
    client_assertion_audiences: [issuer, tokenEndpoint],
    jwt_bearer: {
      grant_type: JWT_BEARER,
      service_user_id: SERVICE_USER,
      client_id: JWT_BEARER_CLIENT,
      allowed_scopes: [...SCOPES, ...JWT_BEARER_EXTRA_SCOPES],
      iat_future_leeway_seconds: IAT_FUTURE_LEEWAY,
      iat_max_age_seconds: IAT_MAX_AGE,
      keys: manifestServiceKeys,
    },
    clients: {
      'basic-client': {
        token_endpoint_auth_method: 'client_secret_basic',
        client_secret: BASIC_SECRET,
        grant_types: ['client_credentials', JWT_BEARER],
      },
      'post-client': {
        token_endpoint_auth_method: 'client_secret_post',
        client_secret: POST_SECRET,
        grant_types: ['client_credentials'],
      },
      ...Object.fromEntries(clientKeys.map((k) => [k.clientId, {
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: k.alg,
        kid: k.kid,
        private_key_file: k.keyFile,
        public_jwk: k.publicJwk,
        ...(k.clientId === 'pkjwt-rsa' ? { zitadel_key_file: rsaAppFile } : undefined),
        grant_types: ['client_credentials'],
      }])),
      [JWT_BEARER_CLIENT]: {
        token_endpoint_auth_method: 'none',
        grant_types: [JWT_BEARER],
      },
    },
    rogue_key: {
      alg: 'ES256',
      private_key_file: rogueFile,
      note: 'registered nowhere: sign with it under a registered kid to get a signature failure',
    },
    control: {
      counters: `${issuer}/_test/counters`,
      reset_counters: `${issuer}/_test/reset-counters`,
      revoke_all: `${issuer}/_test/revoke-all`,
    },
  };
  writeSecretFile(manifestFile, `${JSON.stringify(manifest, null, 2)}\n`);

  const purger = setInterval(purgeExpired, 30_000);
  purger.unref();

  let stopping = false;
  const shutdown = (why) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`interop server stopping (${why})\n`);
    server.close();
    server.closeAllConnections?.();
    process.exit(0);
  };
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(signal, () => shutdown(signal));
  if (options.watchStdin) {
    // The parent holds our stdin pipe; when it dies (or closes the pipe) we exit too.
    process.stdin.on('end', () => shutdown('stdin closed'));
    process.stdin.on('close', () => shutdown('stdin closed'));
    process.stdin.on('error', () => shutdown('stdin error'));
    process.stdin.resume();
  }

  process.stdout.write(`${JSON.stringify({ port, issuer, ca_file: caFile, manifest: manifestFile })}\n`);
}

main().catch((err) => {
  process.stderr.write(`interop server failed to start: ${err?.stack ?? err}\n`);
  process.exit(1);
});
