// OAuth with npm openid-client v6, unmodified, against a running Argus (lib/argus.mjs): discovery, the admin API
// (to register the clients a test needs), sign-in through the HTML forms, calls through the gate, and a log of
// what openid-client sent (to see its DPoP nonce retries).

import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import * as client from 'openid-client';

import { CookieJar, authorizeInBrowser } from './browser.mjs';

export const DEMO_CLIENT_ID = 'demo-app';
export const DEMO_SCOPE = 'openid profile accounts:read';

/**
 * openid-client's configuration for `clientId` at the issuer, over plain http (loopback only). `auth` defaults to
 * none (a public client). `log`, when given, receives one `{ method, url, status, dpopNonceError }` per request.
 */
export async function discover(argus, clientId, { secret, auth, log } = {}) {
  const config = await client.discovery(new URL(argus.urls.issuer), clientId, secret, auth ?? client.None(), {
    execute: [client.allowInsecureRequests],
  });
  if (log) {
    config[client.customFetch] = async (url, options) => {
      const response = await fetch(url, options);
      const challenge = response.headers.get('www-authenticate') ?? '';
      let dpopNonceError = /error="use_dpop_nonce"/.test(challenge);
      if (response.status === 400) {
        const body = await response.clone().json().catch(() => ({}));
        dpopNonceError ||= body.error === 'use_dpop_nonce';
      }
      log.push({ method: options.method, url: new URL(url).pathname, status: response.status, dpopNonceError });
      return response;
    };
  }
  return config;
}

/** Argus's admin API, with an `argus:admin` token of the banner's admin client (client credentials, Basic). */
export async function adminApi(argus) {
  const { clientId, clientSecret } = argus.admin;
  const config = await discover(argus, clientId, { secret: clientSecret, auth: client.ClientSecretBasic(clientSecret) });
  const { access_token: token } = await client.clientCredentialsGrant(config, { scope: 'argus:admin' });
  const call = async (method, path, body) => {
    const response = await fetch(new URL(path, argus.urls.issuer), {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    assert.ok(response.ok, `${method} ${path}: ${response.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  };
  return {
    call,
    /** Register a client; resolves `{ client, secret }` (the secret only for a secret-based method). */
    async createClient(registration) {
      const id = `${registration.client_id ?? 'app'}-${randomBytes(4).toString('hex')}`;
      const answer = await call('POST', '/admin/v1/clients', { ...registration, client_id: id });
      return { client: answer.client, secret: answer.client_secret };
    },
  };
}

/**
 * Sign `username` in through the HTML forms and exchange the code with openid-client. A fresh `jar` is a new
 * browser. With `par`, the authorization request is pushed first (RFC 9126); with `DPoP` (a handle of
 * `client.getDPoPHandle`), PAR and the token request carry proofs. Returns the token response, the id_token claims
 * (if any), the pages the browser went through and the authorization URL it opened.
 */
export async function signIn(config, { username, password, scope = DEMO_SCOPE, jar = new CookieJar(), par, DPoP }) {
  const redirectUri = new URL(`http://127.0.0.1:${randomInt(20_000, 60_000)}/callback`);
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const codeChallenge = await client.calculatePKCECodeChallenge(pkceCodeVerifier);
  const expectedState = client.randomState();
  const expectedNonce = scope.split(' ').includes('openid') ? client.randomNonce() : undefined;
  const parameters = {
    redirect_uri: redirectUri.href,
    scope,
    code_challenge: codeChallenge,
    code_challenge_method: 'S256',
    state: expectedState,
    ...(expectedNonce && { nonce: expectedNonce }),
  };
  const authorizationUrl = par
    ? await client.buildAuthorizationUrlWithPAR(config, parameters, { DPoP })
    : client.buildAuthorizationUrl(config, parameters);

  const { callback, pages } = await authorizeInBrowser(jar, authorizationUrl, redirectUri, { username, password });
  assert.equal(callback.searchParams.get('state'), expectedState);
  assert.ok(callback.searchParams.get('code'), `no code in ${callback}`);
  assert.equal(callback.searchParams.get('iss'), config.serverMetadata().issuer);

  const tokens = await client.authorizationCodeGrant(
    config,
    callback,
    { pkceCodeVerifier, expectedState, expectedNonce },
    undefined,
    { DPoP },
  );
  return { tokens, claims: tokens.claims(), pages, authorizationUrl };
}

/**
 * `method` `path` at the gate with openid-client. A refusal with a `WWW-Authenticate` challenge makes openid-client
 * throw; it is turned back into `{ status, challenge }` so callers can assert on it.
 */
export async function callGate(config, argus, accessToken, path, { method = 'GET', DPoP } = {}) {
  try {
    const url = new URL(path, argus.urls.gate);
    const response = await client.fetchProtectedResource(config, accessToken, url, method, undefined, undefined, {
      DPoP,
    });
    return { status: response.status, body: await response.text(), challenge: undefined };
  } catch (err) {
    if (err instanceof client.WWWAuthenticateChallengeError) {
      const challenge = err.cause.find((c) => c.scheme === 'bearer' || c.scheme === 'dpop');
      return { status: err.status, body: await err.response.text().catch(() => ''), challenge };
    }
    throw err;
  }
}

export function isInvalidGrant(err) {
  return err instanceof client.ResponseBodyError && err.error === 'invalid_grant';
}

/** The claims of a JWT, unverified (for reading what a token says; verification is the library's job). */
export function jwtClaims(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
}
