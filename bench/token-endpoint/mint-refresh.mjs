// Mint refresh tokens for the refresh_token benchmark: COUNT independent chains (each its own sign-in grant, so its
// own refresh family / oidc-provider grant), one refresh token per line on stdout.
//
// Usage:
//   node mint-refresh.mjs --server argus --issuer URL --password DEMO_PASSWORD --count N
//   node mint-refresh.mjs --server oidc-provider --issuer URL --count N
//
// Both use the same request: authorization code + PKCE S256 for a public client, scope `accounts:read`, redirect
// http://127.0.0.1/callback; then the code is exchanged at /token. Argus: one browser session (alice) and one
// consent, then one /authorize per chain. oidc-provider: a fresh browser per chain through its development login and
// consent screens, because it reuses one grant per session and client (and a grant's record grows with each
// rotation of any of its refresh tokens; separate grants keep both servers' per-refresh work equal).

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';

import { CookieJar, authorizeInBrowser, navigate } from '../../tests/interop/lib/browser.mjs';

const REDIRECT_URI = new URL('http://127.0.0.1/callback');
const SCOPE = 'accounts:read';
const PARALLEL = 8;

const { values } = parseArgs({
  options: {
    server: { type: 'string' },
    issuer: { type: 'string' },
    password: { type: 'string', default: '' },
    count: { type: 'string', default: '64' },
  },
});

function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

function authorizationUrl(issuer, path, clientId, challenge) {
  const url = new URL(path, issuer);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: REDIRECT_URI.href,
    scope: SCOPE,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state: randomBytes(8).toString('hex'),
  }).toString();
  return url;
}

async function exchange(issuer, clientId, callback, verifier) {
  const code = callback.searchParams.get('code');
  assert.ok(code, `no code in ${callback}`);
  const response = await fetch(new URL('/token', issuer), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT_URI.href,
      code_verifier: verifier,
      client_id: clientId,
    }),
  });
  const body = await response.json();
  assert.equal(response.status, 200, JSON.stringify(body));
  assert.ok(body.refresh_token, `no refresh_token: ${JSON.stringify(body)}`);
  return body.refresh_token;
}

/** Argus: one browser; the first chain signs in and consents, each further /authorize is answered at once. */
function argusMinter(issuer, password) {
  const jar = new CookieJar();
  return async () => {
    const { verifier, challenge } = pkce();
    const url = authorizationUrl(issuer, '/authorize', 'demo-app', challenge);
    const { callback } = await authorizeInBrowser(jar, url, REDIRECT_URI, { username: 'alice', password });
    return exchange(issuer, 'demo-app', callback, verifier);
  };
}

/** oidc-provider: a fresh browser per chain, through its development-only login and consent forms. */
function oidcProviderMinter(issuer) {
  return async () => {
    const jar = new CookieJar();
    const { verifier, challenge } = pkce();
    let page = await navigate(jar, authorizationUrl(issuer, '/auth', 'bench-app', challenge), REDIRECT_URI);
    for (let step = 0; !page.callback; step++) {
      assert.ok(step < 3, `oidc-provider sign-in did not finish:\n${page.html?.slice(0, 1000)}`);
      assert.equal(page.status, 200, page.html?.slice(0, 1000));
      const action = page.html.match(/<form autocomplete="off" action="([^"]+)" method="post">/)?.[1];
      const prompt = page.html.match(/<input type="hidden" name="prompt" value="(login|consent)"\/>/)?.[1];
      assert.ok(action && prompt, `no login or consent form:\n${page.html.slice(0, 1000)}`);
      const fields = new URLSearchParams({ prompt });
      if (prompt === 'login') fields.set('login', 'bench-user'), fields.set('password', 'any');
      page = await navigate(jar, new URL(action, page.url), REDIRECT_URI, { method: 'POST', body: fields });
    }
    return exchange(issuer, 'bench-app', page.callback, verifier);
  };
}

async function main() {
  const count = Number(values.count);
  assert.ok(Number.isSafeInteger(count) && count > 0, '--count must be a positive integer');
  assert.ok(values.issuer, '--issuer is required');
  const mint =
    values.server === 'argus'
      ? argusMinter(values.issuer, values.password)
      : values.server === 'oidc-provider'
        ? oidcProviderMinter(values.issuer)
        : assert.fail('--server must be argus or oidc-provider');
  // The first chain alone, so that Argus's browser is signed in before the others ask.
  const tokens = [await mint()];
  let next = 1;
  const worker = async () => {
    while (next < count) {
      next += 1;
      tokens.push(await mint());
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, count) }, worker));
  assert.equal(new Set(tokens).size, count, 'refresh tokens are distinct');
  process.stdout.write(`${tokens.join('\n')}\n`);
}

main().catch((err) => {
  console.error(`mint-refresh: ${err.stack ?? err}`);
  process.exit(1);
});
