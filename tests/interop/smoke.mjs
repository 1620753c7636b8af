// End-to-end check of server.mjs against the contract in README.md, with node only.
// Run: node tests/interop/smoke.mjs   (exit status 0 when every check passed)
//
// It starts the server twice (HTTPS with the default TTL, then plain HTTP with --ttl 1), talks to
// it over 127.0.0.1 only, and checks every documented success and error path.

import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import process from 'node:process';
import { setTimeout as delay } from 'node:timers/promises';

const SERVER = new URL('./server.mjs', import.meta.url).pathname;
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

let failures = 0;
let passes = 0;

function check(name, condition, detail) {
  if (condition) {
    passes += 1;
    process.stdout.write(`ok   ${name}\n`);
  } else {
    failures += 1;
    process.stdout.write(`FAIL ${name}${detail === undefined ? '' : `: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`}\n`);
  }
}

// ---------------------------------------------------------------------------------------------

async function startServer(args) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'service-auth-interop-'));
  const started = Date.now();
  const child = spawn(process.execPath, [SERVER, '--dir', dir, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const ready = await new Promise((resolve, reject) => {
    let buffered = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      buffered += chunk;
      const newline = buffered.indexOf('\n');
      if (newline >= 0) resolve(JSON.parse(buffered.slice(0, newline)));
    });
    child.once('exit', (code) => reject(new Error(`server exited early with ${code}`)));
  });
  const startupMs = Date.now() - started;
  const manifest = JSON.parse(fs.readFileSync(ready.manifest, 'utf8'));
  const ca = ready.ca_file ? fs.readFileSync(ready.ca_file) : undefined;
  return { child, dir, ready, manifest, ca, startupMs };
}

function request(server, method, url, { headers = {}, form, agent } = {}) {
  const target = new URL(url);
  const body = form === undefined ? undefined : (typeof form === 'string' ? form : new URLSearchParams(form).toString());
  const lib = target.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(target, {
      method,
      ca: server.ca,
      agent,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' }),
        ...headers,
      },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => {
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

function b64url(value) {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

function signJwt(header, claims, keyFile) {
  const key = crypto.createPrivateKey(fs.readFileSync(keyFile));
  const input = `${b64url(header)}.${b64url(claims)}`;
  let signature;
  switch (header.alg) {
    case 'RS256': signature = crypto.sign('sha256', Buffer.from(input), key); break;
    case 'ES256': signature = crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }); break;
    default: signature = crypto.sign(null, Buffer.from(input), key); break;
  }
  return `${input}.${signature.toString('base64url')}`;
}

function pkcs1ToKeyFile(dir, pem) {
  const file = path.join(dir, 'from-zitadel.pem');
  fs.writeFileSync(file, pem, { mode: 0o600 });
  return file;
}

const now = () => Math.floor(Date.now() / 1000);

function basic(id, secret) {
  const enc = (s) => encodeURIComponent(s).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64')}`;
}

// ---------------------------------------------------------------------------------------------

async function httpsSuite() {
  const server = await startServer([]);
  const { manifest: m, ready } = server;
  check('startup under 5 s', server.startupMs < 5000, `${server.startupMs} ms`);
  check('ready line has port, issuer, ca_file, manifest',
    Number.isInteger(ready.port) && ready.issuer === `https://127.0.0.1:${ready.port}`
      && fs.existsSync(ready.ca_file) && fs.existsSync(ready.manifest), ready);
  const mode = (f) => fs.statSync(f).mode & 0o777;
  check('key files are mode 0600', [
    ...Object.values(m.jwt_bearer.keys).map((k) => k.private_key_file),
    m.clients['pkjwt-rsa'].private_key_file, m.rogue_key.private_key_file, ready.manifest,
  ].every((f) => mode(f) === 0o600));

  const token = (form, headers) => request(server, 'POST', m.token_endpoint, { form, headers });

  const disco = await request(server, 'GET', m.discovery_url);
  check('discovery over HTTPS with the test CA', disco.status === 200 && disco.json.issuer === m.issuer
    && disco.json.token_endpoint === m.token_endpoint, disco.json);
  check('discovery lists the jwt-bearer grant', disco.json.grant_types_supported.includes(JWT_BEARER));

  // -- client credentials ------------------------------------------------------------------
  const basicSecret = m.clients['basic-client'].client_secret;
  let r = await token({ grant_type: 'client_credentials', scope: 'read write' }, { authorization: basic('basic-client', basicSecret) });
  check('client_secret_basic (form-urlencoded id:secret)', r.status === 200 && r.json.token_type === 'Bearer'
    && r.json.expires_in === 60 && r.json.scope === 'read write' && typeof r.json.access_token === 'string', r.json);
  const basicToken = r.json.access_token;

  r = await token({ grant_type: 'client_credentials' }, { authorization: basic('basic-client', 'wrong') });
  check('client_secret_basic wrong secret -> 401 invalid_client', r.status === 401 && r.json.error === 'invalid_client'
    && /^Basic /.test(r.headers['www-authenticate'] ?? ''), r);

  r = await token({ grant_type: 'client_credentials' }, {
    authorization: `Basic ${Buffer.from(`basic-client:${basicSecret}`).toString('base64')}`,
  });
  check('client_secret_basic without urlencoding -> 400 invalid_request', r.status === 400 && r.json.error === 'invalid_request', r.json);

  r = await token({ grant_type: 'client_credentials' }, { authorization: basic('no-such-client', 'x') });
  check('unknown client -> 401 invalid_client', r.status === 401 && r.json.error === 'invalid_client', r.json);

  r = await token({ grant_type: 'client_credentials', client_id: 'post-client', client_secret: m.clients['post-client'].client_secret, scope: 'write' });
  check('client_secret_post', r.status === 200 && r.json.scope === 'write', r.json);

  r = await token({ grant_type: 'client_credentials', client_id: 'post-client', client_secret: 'wrong' });
  check('client_secret_post wrong secret -> 401 invalid_client', r.status === 401 && r.json.error === 'invalid_client', r.json);

  r = await token({ grant_type: 'client_credentials' }, { authorization: basic('post-client', m.clients['post-client'].client_secret) });
  check('post-client using Basic -> 401 invalid_client (method mismatch)', r.status === 401 && r.json.error === 'invalid_client', r.json);
  r = await token({ grant_type: 'client_credentials', client_id: 'basic-client', client_secret: basicSecret });
  check('basic-client using the body -> 401 invalid_client (method mismatch)', r.status === 401 && r.json.error === 'invalid_client', r.json);

  r = await token({ grant_type: 'client_credentials' });
  check('no client authentication at all -> 400 invalid_request', r.status === 400 && r.json.error === 'invalid_request', r.json);

  r = await token({ grant_type: 'client_credentials' }, { authorization: basic('basic-client', basicSecret) });
  check('no scope -> 200 without scope member', r.status === 200 && r.json.scope === undefined, r.json);

  for (const scope of ['admin', 'read bogus', 'openid']) {
    r = await token({ grant_type: 'client_credentials', scope }, { authorization: basic('basic-client', basicSecret) });
    check(`client_credentials scope "${scope}" -> 400 invalid_scope`, r.status === 400 && r.json.error === 'invalid_scope', r.json);
  }

  r = await token({ grant_type: 'password', username: 'a', password: 'b' }, { authorization: basic('basic-client', basicSecret) });
  check('unsupported grant (authenticated) -> 400 unsupported_grant_type', r.status === 400 && r.json.error === 'unsupported_grant_type', r.json);

  r = await token({ grant_type: 'password', username: 'a', password: 'b' }, { authorization: basic('basic-client', 'wrong') });
  check('unsupported grant with a wrong secret -> 401 invalid_client (client checked first)', r.status === 401 && r.json.error === 'invalid_client', r.json);
  r = await token({ grant_type: 'password', username: 'a', password: 'b' });
  check('unsupported grant without client authentication -> 400 invalid_request', r.status === 400 && r.json.error === 'invalid_request', r.json);
  r = await token({ scope: 'read' }, { authorization: basic('basic-client', basicSecret) });
  check('no grant_type -> 400 invalid_request', r.status === 400 && r.json.error === 'invalid_request', r.json);
  r = await token('grant_type=client_credentials&scope=read&scope=write', { authorization: basic('basic-client', basicSecret) });
  check('repeated parameter -> 400 invalid_request', r.status === 400 && r.json.error === 'invalid_request', r.json);
  r = await token('{"grant_type":"client_credentials"}', { authorization: basic('basic-client', basicSecret), 'content-type': 'application/json' });
  check('JSON body -> 400 invalid_request', r.status === 400 && r.json.error === 'invalid_request', r.json);
  for (const scope of ['read  write', 'read"']) {
    r = await token({ grant_type: 'client_credentials', scope }, { authorization: basic('basic-client', basicSecret) });
    check(`malformed scope ${JSON.stringify(scope)} -> 400 invalid_scope`, r.status === 400 && r.json.error === 'invalid_scope', r.json);
  }
  r = await token({ grant_type: 'client_credentials', resource: 'https://other.example/api' }, { authorization: basic('basic-client', basicSecret) });
  check('unknown resource -> 400 invalid_target', r.status === 400 && r.json.error === 'invalid_target', r.json);

  r = await token({ grant_type: 'refresh_token', refresh_token: 'x' }, { authorization: basic('basic-client', basicSecret) });
  check('refresh_token grant -> 400 unsupported_grant_type', r.status === 400 && r.json.error === 'unsupported_grant_type', r.json);

  r = await token({ grant_type: 'client_credentials' }, { authorization: basic('basic-client', 'wrong'), accept: 'text/html' });
  check('errors stay JSON with Accept: text/html', r.status === 401 && r.json?.error === 'invalid_client', r.text.slice(0, 80));

  // -- private key JWT client authentication -------------------------------------------------
  const clientAssertion = (clientId, overrides = {}, keyFile) => {
    const c = m.clients[clientId];
    const claims = {
      iss: clientId, sub: clientId, aud: m.token_endpoint, jti: crypto.randomUUID(), iat: now(), exp: now() + 60, ...overrides,
    };
    return signJwt({ alg: c.token_endpoint_auth_signing_alg, kid: c.kid, typ: 'JWT' }, claims, keyFile ?? c.private_key_file);
  };
  const pkjwt = (clientId, assertion, extra = {}) => token({
    grant_type: 'client_credentials', client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: assertion, ...extra,
  });

  for (const clientId of ['pkjwt-rsa', 'pkjwt-ec', 'pkjwt-ed']) {
    r = await pkjwt(clientId, clientAssertion(clientId), { scope: 'read' });
    check(`private_key_jwt ${clientId} aud=token endpoint`, r.status === 200 && r.json.scope === 'read', r.json);
    r = await pkjwt(clientId, clientAssertion(clientId, { aud: m.issuer }));
    check(`private_key_jwt ${clientId} aud=issuer`, r.status === 200, r.json);
  }
  r = await pkjwt('pkjwt-rsa', clientAssertion('pkjwt-rsa'), { client_id: 'pkjwt-rsa' });
  check('private_key_jwt with client_id in body too', r.status === 200, r.json);
  r = await pkjwt('pkjwt-ec', clientAssertion('pkjwt-ec', { aud: [m.token_endpoint, 'https://other.example'] }));
  check('private_key_jwt aud array containing the token endpoint', r.status === 200, r.json);
  r = await pkjwt('pkjwt-ec', clientAssertion('pkjwt-ec', { aud: `${m.issuer}/` }));
  check('private_key_jwt aud=issuer with trailing slash -> 401 invalid_client', r.status === 401 && r.json.error === 'invalid_client', r.json);
  r = await pkjwt('pkjwt-ec', clientAssertion('pkjwt-ec', { aud: 'https://example.com/token' }));
  check('private_key_jwt wrong aud -> 401 invalid_client', r.status === 401 && r.json.error === 'invalid_client', r.json);
  r = await pkjwt('pkjwt-ec', clientAssertion('pkjwt-ec', { iat: now() - 120, exp: now() - 60 }));
  check('private_key_jwt expired -> 401 invalid_client', r.status === 401 && r.json.error === 'invalid_client', r.json);
  r = await pkjwt('pkjwt-ec', clientAssertion('pkjwt-ec', {}, m.rogue_key.private_key_file));
  check('private_key_jwt wrong key -> 401 invalid_client', r.status === 401 && r.json.error === 'invalid_client', r.json);
  const once = clientAssertion('pkjwt-ed');
  await pkjwt('pkjwt-ed', once);
  r = await pkjwt('pkjwt-ed', once);
  check('private_key_jwt jti replay -> 401 invalid_client', r.status === 401 && r.json.error === 'invalid_client', r.json);
  r = await pkjwt('pkjwt-ed', clientAssertion('pkjwt-ed', { jti: undefined }));
  check('private_key_jwt without jti -> 401 invalid_client', r.status === 401 && r.json.error === 'invalid_client', r.json);
  r = await pkjwt('pkjwt-rsa', clientAssertion('pkjwt-rsa', { exp: undefined }));
  check('private_key_jwt without exp -> 401 invalid_client', r.status === 401 && r.json.error === 'invalid_client', r.json);
  r = await pkjwt('pkjwt-rsa', signJwt({ alg: 'RS256', typ: 'JWT' }, {
    iss: 'pkjwt-rsa', sub: 'pkjwt-rsa', aud: m.token_endpoint, jti: crypto.randomUUID(), iat: now(), exp: now() + 60,
  }, m.clients['pkjwt-rsa'].private_key_file));
  check('private_key_jwt without kid header (single key) -> 200', r.status === 200, r.json);
  r = await pkjwt('pkjwt-rsa', signJwt({ alg: 'RS256', kid: 'other-kid', typ: 'JWT' }, {
    iss: 'pkjwt-rsa', sub: 'pkjwt-rsa', aud: m.token_endpoint, jti: crypto.randomUUID(), iat: now(), exp: now() + 60,
  }, m.clients['pkjwt-rsa'].private_key_file));
  check('private_key_jwt unknown kid -> 401 invalid_client', r.status === 401 && r.json.error === 'invalid_client', r.json);
  r = await pkjwt('pkjwt-ed', signJwt({ alg: 'Ed25519', kid: m.clients['pkjwt-ed'].kid, typ: 'JWT' }, {
    iss: 'pkjwt-ed', sub: 'pkjwt-ed', aud: m.token_endpoint, jti: crypto.randomUUID(), iat: now(), exp: now() + 60,
  }, m.clients['pkjwt-ed'].private_key_file));
  check('private_key_jwt pkjwt-ed with alg Ed25519 instead of EdDSA -> 401 invalid_client', r.status === 401 && r.json.error === 'invalid_client', r.json);
  r = await pkjwt('pkjwt-ec', clientAssertion('pkjwt-ec', { iss: 'pkjwt-rsa' }));
  check('private_key_jwt iss != client id -> 401 invalid_client', r.status === 401 && r.json.error === 'invalid_client', r.json);
  r = await pkjwt('pkjwt-ec', clientAssertion('pkjwt-ec', { iat: now() + 3600, exp: now() + 3660 }));
  check('private_key_jwt iat 1 h in the future is accepted (oidc-provider ignores iat)', r.status === 200, r.json);
  r = await pkjwt('pkjwt-rsa', clientAssertion('pkjwt-rsa'), { scope: 'admin' });
  check('private_key_jwt scope admin -> 400 invalid_scope', r.status === 400 && r.json.error === 'invalid_scope', r.json);

  // -- JWT bearer grant ---------------------------------------------------------------------
  const svc = m.jwt_bearer;
  const grant = (alg, overrides = {}, { keyFile, kid, headerAlg } = {}) => {
    const k = svc.keys[alg];
    const claims = { iss: svc.service_user_id, sub: svc.service_user_id, aud: m.issuer, iat: now(), exp: now() + 3600, ...overrides };
    return signJwt({ alg: headerAlg ?? k.alg, kid: kid ?? k.kid, typ: 'JWT' }, claims, keyFile ?? k.private_key_file);
  };
  const bearer = (assertion, extra = {}, headers = {}) => token({ grant_type: JWT_BEARER, assertion, ...extra }, headers);

  const bearerTokens = {};
  for (const alg of ['RS256', 'ES256', 'EdDSA']) {
    r = await bearer(grant(alg), { scope: 'read write' });
    check(`jwt-bearer ${alg}, no client authentication`, r.status === 200 && r.json.token_type === 'Bearer'
      && r.json.expires_in === 60 && r.json.scope === 'read write', r.json);
    bearerTokens[alg] = r.json.access_token;
  }
  r = await bearer(grant('EdDSA', {}, { headerAlg: 'Ed25519' }));
  check('jwt-bearer alg Ed25519 (RFC 9864 name) accepted for the Ed25519 key', r.status === 200, r.json);
  r = await bearer(grant('RS256'), { client_id: svc.client_id, scope: 'openid urn:zitadel:iam:org:project:id:zitadel:aud' });
  check('jwt-bearer with client_id=jwt-bearer-client and ZITADEL default scope', r.status === 200
    && r.json.scope === 'openid urn:zitadel:iam:org:project:id:zitadel:aud', r.json);
  r = await bearer(grant('ES256', { aud: [m.issuer, 'https://other.example'] }));
  check('jwt-bearer aud array containing the issuer', r.status === 200, r.json);
  r = await bearer(grant('RS256'), { scope: 'read' }, { authorization: basic('basic-client', basicSecret) });
  check('jwt-bearer with client_secret_basic (basic-client)', r.status === 200, r.json);
  const zitadel = JSON.parse(fs.readFileSync(svc.keys.RS256.zitadel_key_file, 'utf8'));
  r = await bearer(grant('RS256', {}, { keyFile: pkcs1ToKeyFile(server.dir, zitadel.key), kid: zitadel.keyId }));
  check('jwt-bearer signed with the ZITADEL key file (PKCS#1)', zitadel.type === 'serviceaccount'
    && zitadel.userId === svc.service_user_id && r.status === 200, r.json);
  r = await bearer(grant('RS256'), { client_id: 'post-client', client_secret: m.clients['post-client'].client_secret });
  check('jwt-bearer by a client without that grant -> 400 invalid_request', r.status === 400 && r.json.error === 'invalid_request', r.json);

  const bearerErrors = [
    ['unknown kid', grant('RS256', {}, { kid: 'no-such-kid' }), 'invalid_grant'],
    ['signature by another key', grant('ES256', {}, { keyFile: m.rogue_key.private_key_file }), 'invalid_grant'],
    ['alg not matching the key', grant('ES256', {}, { kid: svc.keys.RS256.kid }), 'invalid_grant'],
    ['expired', grant('RS256', { iat: now() - 120, exp: now() - 60 }), 'invalid_grant'],
    ['no exp', grant('RS256', { exp: undefined }), 'invalid_grant'],
    ['iat 5 s in the future', grant('RS256', { iat: now() + 5 }), 'invalid_grant', 'assertion issued in the future'],
    ['iat older than 1 h', grant('RS256', { iat: now() - 3700 }), 'invalid_grant'],
    ['aud = token endpoint', grant('RS256', { aud: m.token_endpoint }), 'invalid_grant'],
    ['aud = issuer with trailing slash', grant('RS256', { aud: `${m.issuer}/` }), 'invalid_grant'],
    ['iss not the service user', grant('RS256', { iss: 'svc-user-2' }), 'invalid_grant'],
    ['sub not the service user', grant('RS256', { sub: 'svc-user-2' }), 'invalid_grant'],
    ['not a JWT', 'abc.def', 'invalid_grant'],
    ['no kid header', signJwt({ alg: 'RS256' }, {
      iss: svc.service_user_id, sub: svc.service_user_id, aud: m.issuer, iat: now(), exp: now() + 60,
    }, svc.keys.RS256.private_key_file), 'invalid_grant', 'assertion has no kid header'],
  ];
  for (const [name, assertion, code, description] of bearerErrors) {
    r = await bearer(assertion);
    check(`jwt-bearer ${name} -> 400 ${code}${description ? ` "${description}"` : ''}`, r.status === 400 && r.json.error === code
      && (description === undefined || r.json.error_description === description), r.json);
  }
  r = await token({ grant_type: JWT_BEARER });
  check('jwt-bearer without assertion -> 400 invalid_request', r.status === 400 && r.json.error === 'invalid_request', r.json);
  r = await bearer(grant('RS256'), { scope: 'read admin' });
  check('jwt-bearer scope admin -> 400 invalid_scope', r.status === 400 && r.json.error === 'invalid_scope', r.json);

  // -- resource ------------------------------------------------------------------------------
  const resource = (value, extra = {}) => request(server, 'GET', m.resource_url, {
    headers: value === undefined ? extra : { authorization: `Bearer ${value}`, ...extra },
  });
  r = await resource(basicToken);
  check('resource accepts a client credentials access token', r.status === 200 && r.json.client_id === 'basic-client', r.json);
  r = await resource(bearerTokens.EdDSA);
  check('resource accepts a jwt-bearer access token (sub = service user)', r.status === 200 && r.json.sub === svc.service_user_id, r.json);
  r = await resource(m.static_pat);
  check('resource accepts the static PAT', r.status === 200 && r.json.token_kind === 'personal_access_token', r.json);
  r = await resource('not-a-token');
  check('resource rejects an unknown token: 401 + WWW-Authenticate error="invalid_token"', r.status === 401
    && /^Bearer .*error="invalid_token"/.test(r.headers['www-authenticate'] ?? ''), r.headers);
  r = await resource(undefined);
  check('resource without Authorization: 401 + WWW-Authenticate: Bearer (no error code)', r.status === 401
    && /^Bearer realm=/.test(r.headers['www-authenticate']) && !/error=/.test(r.headers['www-authenticate']), r.headers);
  r = await resource(undefined, { authorization: basic('basic-client', basicSecret) });
  check('resource with Basic instead of Bearer: 401', r.status === 401, r.status);
  r = await request(server, 'POST', m.resource_url, { headers: { authorization: `Bearer ${basicToken}` }, form: '' });
  check('resource POST -> 405', r.status === 405, r.status);

  // -- control API ---------------------------------------------------------------------------
  let counters = (await request(server, 'GET', m.control.counters)).json;
  check('counters count token requests', counters.token_requests.total > 40
    && counters.token_requests.total === counters.token_requests.succeeded + counters.token_requests.failed, counters.token_requests);
  check('counters per client', counters.token_requests.by_client['basic-client'] >= 5
    && counters.token_requests.by_client['pkjwt-ed'] >= 2 && counters.token_requests.by_client['jwt-bearer-client'] >= 10, counters.token_requests.by_client);
  check('counters per grant type', counters.token_requests.by_grant_type.client_credentials > 10
    && counters.token_requests.by_grant_type[JWT_BEARER] > 10 && counters.token_requests.by_grant_type.password === 3, counters.token_requests.by_grant_type);
  check('counters per error', counters.token_requests.by_error.invalid_grant === bearerErrors.length, counters.token_requests.by_error);
  check('counters discovery and resource', counters.discovery_requests === 1 && counters.resource_requests.total === 7
    && counters.resource_requests.accepted === 3, counters);
  await request(server, 'POST', m.control.reset_counters);
  counters = (await request(server, 'GET', m.control.counters)).json;
  check('reset-counters', counters.token_requests.total === 0 && counters.resource_requests.total === 0, counters);

  r = await request(server, 'POST', m.control.revoke_all);
  check('revoke-all', r.status === 200 && r.json.revoked > 10, r.json);
  r = await resource(basicToken);
  check('revoked token rejected with invalid_token', r.status === 401 && /invalid_token/.test(r.headers['www-authenticate']), r.status);
  r = await resource(m.static_pat);
  check('static PAT still accepted after revoke-all', r.status === 200, r.status);
  r = await token({ grant_type: 'client_credentials' }, { authorization: basic('basic-client', basicSecret) });
  const fresh = r.json.access_token;
  r = await resource(fresh);
  check('token issued after revoke-all accepted', r.status === 200, r.json);

  // -- curl-free TLS checks --------------------------------------------------------------------
  const untrusted = await request({ ca: undefined }, 'GET', m.discovery_url).then(() => 'connected', (e) => e.code);
  check('TLS fails without the test CA', untrusted !== 'connected', untrusted);
  const viaLocalhost = await request(server, 'GET', m.discovery_url.replace('127.0.0.1', 'localhost'));
  check('certificate valid for localhost too', viaLocalhost.status === 200);

  // -- shutdown on stdin close ---------------------------------------------------------------
  const exited = new Promise((resolve) => server.child.once('exit', (code) => resolve(code)));
  server.child.stdin.end();
  const code = await Promise.race([exited, delay(3000, 'timeout')]);
  check('exits when stdin closes', code === 0, code);
  return server;
}

async function plainSuite() {
  const server = await startServer(['--plain-http', '--ttl', '2']);
  const { manifest: m, ready } = server;
  check('plain HTTP: issuer http://127.0.0.1:<port>, ca_file null', ready.issuer === `http://127.0.0.1:${ready.port}` && ready.ca_file === null, ready);
  let r = await request(server, 'POST', m.token_endpoint, {
    form: { grant_type: 'client_credentials', client_id: 'post-client', client_secret: m.clients['post-client'].client_secret },
  });
  check('plain HTTP: token with expires_in 2', r.status === 200 && r.json.expires_in === 2, r.json);
  const value = r.json.access_token;
  r = await request(server, 'GET', m.resource_url, { headers: { authorization: `Bearer ${value}` } });
  check('plain HTTP: fresh token accepted', r.status === 200, r.json);
  // exp = floor(issue time) + ttl, so the token lives between ttl - 1 and ttl seconds.
  await delay(2100);
  r = await request(server, 'GET', m.resource_url, { headers: { authorization: `Bearer ${value}` } });
  check('expired token rejected with invalid_token', r.status === 401 && /invalid_token/.test(r.headers['www-authenticate']), r.status);

  const exited = new Promise((resolve) => server.child.once('exit', (code, signal) => resolve(signal ?? code)));
  server.child.kill('SIGTERM');
  const code = await Promise.race([exited, delay(3000, 'timeout')]);
  check('exits on SIGTERM', code === 0, code);
  return server;
}

const servers = [];
try {
  servers.push(await httpsSuite());
  servers.push(await plainSuite());
} catch (err) {
  failures += 1;
  process.stdout.write(`FAIL unexpected error: ${err?.stack ?? err}\n`);
} finally {
  for (const s of servers) {
    if (s.child.exitCode === null) s.child.kill('SIGTERM');
    fs.rmSync(s.dir, { recursive: true, force: true });
  }
}
process.stdout.write(`${passes} passed, ${failures} failed\n`);
process.exit(failures ? 1 : 0);
