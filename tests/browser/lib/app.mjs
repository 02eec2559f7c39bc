// The demo app's side of a sign-in, as a public client with PKCE (npm oauth4webapi), and the browser's side
// through the issuer's real pages in Chromium.

import assert from 'node:assert/strict';

import * as oauth from 'oauth4webapi';

export const CLIENT_ID = 'demo-app';
// The demo app's registered loopback redirect. Nothing listens there: the test intercepts the navigation.
export const REDIRECT_URI = 'http://127.0.0.1/callback';

/** Discovery of the issuer at `issuerUrl` (http: allowed, it is loopback). */
export async function discover(issuerUrl) {
  const issuer = new URL(issuerUrl);
  const response = await oauth.discoveryRequest(issuer, { algorithm: 'oidc', [oauth.allowInsecureRequests]: true });
  return oauth.processDiscoveryResponse(issuer, response);
}

/**
 * A new authorization request: its URL and what the code exchange needs. `extra` adds parameters (`max_age`,
 * `acr_values` of a step-up challenge, say).
 */
export async function authorizationRequest(as, scope = 'openid accounts:read', extra = {}) {
  const verifier = oauth.generateRandomCodeVerifier();
  const nonce = oauth.generateRandomNonce();
  const state = oauth.generateRandomState();
  const url = new URL(as.authorization_endpoint);
  url.searchParams.set('client_id', CLIENT_ID);
  url.searchParams.set('redirect_uri', REDIRECT_URI);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('scope', scope);
  url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier));
  url.searchParams.set('code_challenge_method', 'S256');
  url.searchParams.set('nonce', nonce);
  url.searchParams.set('state', state);
  for (const [name, value] of Object.entries(extra)) url.searchParams.set(name, String(value));
  return { url, verifier, nonce, state, maxAge: extra.max_age === undefined ? undefined : Number(extra.max_age) };
}

/**
 * Resolve with the callback URL once `page` is sent to the app's redirect URI (answered locally, so nothing needs
 * to listen there). Call before the navigation that leads there.
 */
export function callbackOf(page) {
  const arrived = new Promise((resolve) => {
    page.route(`${REDIRECT_URI}**`, async (route) => {
      await route.fulfill({ status: 200, contentType: 'text/plain', body: 'signed in' });
      resolve(new URL(route.request().url()));
    });
  });
  // Settled only once the page shows the app's answer, so the test's next navigation does not cut this one short.
  return arrived.then(async (url) => {
    await page.waitForURL(`${REDIRECT_URI}**`);
    return url;
  });
}

/** Open `url` and submit the login form as `username`. */
export async function submitPassword(page, url, username, password) {
  await page.goto(url.href);
  await page.fill('input[name="username"]', username);
  await page.fill('input[name="password"]', password);
  await Promise.all([page.waitForLoadState('load'), page.click('form[action="/login"] button[type="submit"]')]);
}

/** Exchange the callback's code (oauth4webapi checks state, PKCE, the id_token's signature, iss, aud, nonce). */
export async function exchange(as, request, callback) {
  const client = { client_id: CLIENT_ID };
  const auth = oauth.None();
  const params = oauth.validateAuthResponse(as, client, callback, request.state);
  const response = await oauth.authorizationCodeGrantRequest(as, client, auth, params, REDIRECT_URI, request.verifier, {
    [oauth.allowInsecureRequests]: true,
  });
  const result = await oauth.processAuthorizationCodeResponse(as, client, response, {
    expectedNonce: request.nonce,
    requireIdToken: true,
    // With max_age asked for, oauth4webapi also checks the id_token's auth_time against it.
    ...(request.maxAge === undefined ? {} : { maxAge: request.maxAge }),
  });
  const claims = oauth.getValidatedIdTokenClaims(result);
  assert.ok(claims, 'an id_token came with the tokens');
  return { tokens: result, claims };
}
