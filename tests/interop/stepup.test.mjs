// Step-up authentication end to end (RFC 9470) with npm openid-client v6, unmodified: the gate answers an operation
// marked `x-argus-step-up` with the `insufficient_user_authentication` challenge once the sign-in is too old; the
// app reads the challenge with openid-client, authorizes again with its `max_age` and `acr_values`, the issuer shows
// the login form although the browser's session is live, and the new DPoP-bound token passes.
//
// The gate route is this test's own: a small spec (written to a temp directory) in front of a tiny upstream.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import * as client from 'openid-client';

import { Argus } from './lib/argus.mjs';
import { CookieJar, authorizeInBrowser, navigate } from './lib/browser.mjs';
import { DEMO_CLIENT_ID, DEMO_SCOPE, callGate, discover, jwtClaims, signIn } from './lib/oauth.mjs';

const PWD = 'urn:argus:acr:pwd';
/** Seconds a sign-in stays recent enough for `POST /payments`: short, so the test can outlive it. */
const MAX_AGE = 3;

const SPEC = `openapi: 3.1.0
info: {title: step-up test, version: "1"}
paths:
  /balance:
    get:
      operationId: getBalance
      security: [{oauth2: [accounts:read]}]
      responses:
        "200": {description: ok, content: {application/json: {schema: {type: object}}}}
  /payments:
    post:
      operationId: pay
      security: [{oauth2: [accounts:read]}]
      x-argus-step-up: {acr: "${PWD}", max_age: ${MAX_AGE}}
      responses:
        "200": {description: ok, content: {application/json: {schema: {type: object}}}}
components:
  securitySchemes:
    oauth2:
      type: oauth2
      flows:
        authorizationCode:
          authorizationUrl: http://127.0.0.1/authorize
          tokenUrl: http://127.0.0.1/token
          scopes: {accounts:read: read}
`;

/** An upstream that answers every call with `{"ok": true}`. */
async function startUpstream() {
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{"ok":true}');
    });
  });
  await new Promise((ready) => server.listen(0, '127.0.0.1', ready));
  return server;
}

/** Sleep until a sign-in at `authTime` (seconds) is more than `maxAge` whole seconds old, as the gate counts it. */
async function outlive(authTime, maxAge) {
  const staleAt = (authTime + maxAge + 1) * 1000 + 50;
  await sleep(Math.max(0, staleAt - Date.now()));
}

/**
 * Authorize again in the browser `jar` with the requirement of a step-up challenge, and redeem the code with
 * openid-client, which checks the id_token's `auth_time` against `max_age` itself.
 */
async function stepUp(config, jar, challenge, { username, password, DPoP }) {
  const redirectUri = new URL(`http://127.0.0.1:${randomInt(20_000, 60_000)}/callback`);
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const expectedState = client.randomState();
  const expectedNonce = client.randomNonce();
  const maxAge = Number(challenge.parameters.max_age);
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri.href,
    scope: DEMO_SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
    code_challenge_method: 'S256',
    state: expectedState,
    nonce: expectedNonce,
    max_age: String(maxAge),
    acr_values: challenge.parameters.acr_values,
  });
  const { callback, pages } = await authorizeInBrowser(jar, authorizationUrl, redirectUri, { username, password });
  const tokens = await client.authorizationCodeGrant(
    config,
    callback,
    { pkceCodeVerifier, expectedState, expectedNonce, maxAge },
    undefined,
    { DPoP },
  );
  return { tokens, claims: tokens.claims(), pages };
}

describe('step-up (RFC 9470) with openid-client v6', { timeout: 120_000 }, () => {
  let argus;
  let upstream;
  let tmp;
  let failed = false;

  const test = (name, fn) =>
    it(name, async () => {
      try {
        await fn();
      } catch (err) {
        failed = true;
        throw err;
      }
    });

  before(async () => {
    upstream = await startUpstream();
    tmp = await mkdtemp(join(tmpdir(), 'argus-stepup-'));
    const spec = join(tmp, 'spec.yaml');
    await writeFile(spec, SPEC);
    const { port } = upstream.address();
    argus = await Argus.start({
      config: `
[[gate.routes]]
name = "stepup"
prefix = "/"
upstream = "http://127.0.0.1:${port}"
openapi = ${JSON.stringify(spec)}
`,
    });
  });

  after(async () => {
    if (argus) {
      await argus.stop();
      if (failed) process.stderr.write(`\n${argus.output()}\n`);
    }
    upstream?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  test('a stale sign-in is challenged, re-authorized with max_age and acr_values, and then passes', async () => {
    const alice = { username: 'alice', password: argus.password };
    const config = await discover(argus, DEMO_CLIENT_ID);
    const metadata = config.serverMetadata();
    assert.ok(metadata.acr_values_supported?.includes(PWD), 'the password level is advertised');
    assert.ok(['acr', 'auth_time'].every((c) => metadata.claims_supported?.includes(c)));
    const DPoP = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
    const jar = new CookieJar();

    const first = await signIn(config, { ...alice, jar, DPoP });
    assert.deepEqual(first.pages, ['login', 'consent']);
    assert.equal(first.tokens.token_type, 'dpop');
    const signedIn = jwtClaims(first.tokens.access_token);
    assert.equal(signedIn.acr, PWD, 'the access token says how the user signed in');
    assert.equal(signedIn.auth_time, first.claims.auth_time, 'the access token and the id_token agree');
    assert.equal(first.claims.acr, PWD);

    await outlive(signedIn.auth_time, MAX_AGE);
    const balance = await callGate(config, argus, first.tokens.access_token, '/balance', { DPoP });
    assert.equal(balance.status, 200, `an operation without step-up: ${balance.body}`);
    const refused = await callGate(config, argus, first.tokens.access_token, '/payments', { method: 'POST', DPoP });
    assert.equal(refused.status, 401, refused.body);
    const challenge = refused.challenge;
    assert.equal(challenge?.scheme, 'dpop', 'the challenge is in the scheme the token came with');
    assert.equal(challenge.parameters.error, 'insufficient_user_authentication');
    assert.equal(challenge.parameters.max_age, String(MAX_AGE));
    assert.equal(challenge.parameters.acr_values, PWD);
    assert.equal(JSON.parse(refused.body).type, 'urn:argus:problem:step-up-required', refused.body);

    // Without interaction the issuer cannot meet max_age: login_required, although the session is live.
    const redirectUri = new URL('http://127.0.0.1:41000/callback');
    const silent = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri.href,
      scope: DEMO_SCOPE,
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
      state: 'silent',
      prompt: 'none',
      max_age: String(MAX_AGE),
    });
    const none = await navigate(jar, silent, redirectUri);
    assert.equal(none.callback?.searchParams.get('error'), 'login_required', `${none.callback ?? none.html}`);

    // The app meets the challenge: the login form again (the consent stands), a new sign-in, a new token.
    const stepped = await stepUp(config, jar, challenge, { ...alice, DPoP });
    assert.deepEqual(stepped.pages, ['login'], 'the login form appears again in the signed-in browser');
    const renewed = jwtClaims(stepped.tokens.access_token);
    assert.ok(renewed.auth_time > signedIn.auth_time, `a new sign-in: ${renewed.auth_time} > ${signedIn.auth_time}`);
    assert.equal(renewed.acr, PWD);
    assert.equal(stepped.claims.acr, PWD);
    assert.equal(renewed.sid, signedIn.sid, 'the same session, signed into again');
    const paid = await callGate(config, argus, stepped.tokens.access_token, '/payments', { method: 'POST', DPoP });
    assert.equal(paid.status, 200, paid.body);

    // A refresh of the first family is no new sign-in: its token is still too old to pay.
    const refreshed = await client.refreshTokenGrant(config, first.tokens.refresh_token, undefined, { DPoP });
    assert.equal(jwtClaims(refreshed.access_token).auth_time, signedIn.auth_time);
    const still = await callGate(config, argus, refreshed.access_token, '/payments', { method: 'POST', DPoP });
    assert.equal(still.status, 401);
    assert.equal(still.challenge?.parameters.error, 'insufficient_user_authentication');
  });
});
