// DPoP helpers of the gate benchmark (node >= 20, no packages: node's own crypto).
//
//   node dpop.mjs key                                   a new P-256 private key, as a JWK, on stdout
//   node dpop.mjs token --issuer URL --basic B64 --scope S [--key FILE]
//                                                       a client_credentials access token on stdout; with --key, a
//                                                       DPoP-bound one (the proof's key is FILE's)
//   node dpop.mjs proofs --key FILE --token AT --htu URL --count N [--method GET]
//                                                       N DPoP proofs for one request, one a line, each with its own
//                                                       jti, iat = now, ath = the token's hash (RFC 9449 §4.2)
//   node dpop.mjs pem --issuer URL                      the issuer's ES256 signing key (from its JWKS) as a PEM
//                                                       public key, for HAProxy's jwt_verify
import { createHash, createPrivateKey, createPublicKey, randomBytes, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';

const b64u = (buf) => Buffer.from(buf).toString('base64url');

function args(list) {
  const out = {};
  for (let i = 0; i < list.length; i += 2) {
    if (!list[i].startsWith('--') || list[i + 1] === undefined) throw new Error(`bad argument ${list[i]}`);
    out[list[i].slice(2)] = list[i + 1];
  }
  return out;
}

function need(a, ...names) {
  for (const n of names) if (a[n] === undefined) throw new Error(`--${n} is required`);
}

function loadKey(file) {
  const jwk = JSON.parse(readFileSync(file, 'utf8'));
  const { kty, crv, x, y } = jwk;
  const header = { typ: 'dpop+jwt', alg: 'ES256', jwk: { kty, crv, x, y } };
  return { key: createPrivateKey({ key: jwk, format: 'jwk' }), header: b64u(JSON.stringify(header)) };
}

// One signed proof; `extra` adds `ath` or `nonce`.
function proof(k, htm, htu, jti, iat, extra = {}) {
  const claims = { jti, htm, htu, iat, ...extra };
  const input = `${k.header}.${b64u(JSON.stringify(claims))}`;
  const sig = sign('sha256', Buffer.from(input), { key: k.key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64u(sig)}`;
}

async function token(a) {
  need(a, 'issuer', 'basic', 'scope');
  const body = new URLSearchParams({ grant_type: 'client_credentials', scope: a.scope });
  const url = `${a.issuer}/token`;
  const headers = { authorization: `Basic ${a.basic}`, 'content-type': 'application/x-www-form-urlencoded' };
  let nonce;
  for (let attempt = 0; attempt < 2; attempt++) {
    if (a.key) {
      const now = Math.floor(Date.now() / 1000);
      headers.dpop = proof(loadKey(a.key), 'POST', url, b64u(randomBytes(16)), now, nonce ? { nonce } : {});
    }
    const res = await fetch(url, { method: 'POST', headers, body });
    const json = await res.json();
    if (res.ok) {
      if (a.key && json.token_type !== 'DPoP') throw new Error(`expected a DPoP token, got ${json.token_type}`);
      return json.access_token;
    }
    if (json.error === 'use_dpop_nonce' && res.headers.get('dpop-nonce')) {
      nonce = res.headers.get('dpop-nonce');
      continue;
    }
    throw new Error(`token request failed: ${res.status} ${JSON.stringify(json)}`);
  }
  throw new Error('token request failed twice');
}

function proofs(a) {
  need(a, 'key', 'token', 'htu', 'count');
  const k = loadKey(a.key);
  const ath = b64u(createHash('sha256').update(a.token).digest());
  // A random prefix and a counter: unique, and cheaper than random bytes per proof.
  const prefix = b64u(randomBytes(9));
  const iat = Math.floor(Date.now() / 1000);
  const n = Number(a.count);
  const chunk = [];
  for (let i = 0; i < n; i++) {
    chunk.push(proof(k, a.method ?? 'GET', a.htu, `${prefix}.${i}`, iat, { ath }));
    if (chunk.length === 4096) {
      process.stdout.write(chunk.join('\n') + '\n');
      chunk.length = 0;
    }
  }
  if (chunk.length) process.stdout.write(chunk.join('\n') + '\n');
}

async function pem(a) {
  need(a, 'issuer');
  const meta = await (await fetch(`${a.issuer}/.well-known/openid-configuration`)).json();
  const jwks = await (await fetch(meta.jwks_uri)).json();
  const jwk = jwks.keys.find((k) => k.alg === 'ES256' || (k.kty === 'EC' && k.crv === 'P-256'));
  if (!jwk) throw new Error('no ES256 key in the JWKS');
  process.stdout.write(createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }));
}

const [command, ...rest] = process.argv.slice(2);
const a = args(rest);
switch (command) {
  case 'key': {
    const { generateKeyPairSync } = await import('node:crypto');
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    process.stdout.write(JSON.stringify(privateKey.export({ format: 'jwk' })) + '\n');
    break;
  }
  case 'token':
    process.stdout.write((await token(a)) + '\n');
    break;
  case 'proofs':
    proofs(a);
    break;
  case 'pem':
    await pem(a);
    break;
  default:
    console.error('usage: node dpop.mjs key | token ... | proofs ... | pem ...');
    process.exit(2);
}
