// npm openid-client v6, unmodified, against `argus up --demo`: PKCE with PAR (RFC 9126), DPoP (RFC 9449) with the
// server-nonce retry at the token endpoint and at the gate, refresh rotation where reuse revokes that family and only
// that family, introspection (RFC 7662) and revocation (RFC 7009).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, webcrypto } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import * as client from 'openid-client';

import { Argus } from './lib/argus.mjs';
import { CookieJar, navigate } from './lib/browser.mjs';
import { DEMO_CLIENT_ID, adminApi, callGate, discover, isInvalidGrant, jwtClaims, signIn } from './lib/oauth.mjs';

const REVOCATION_DEADLINE_MS = 5_000;
/** The issuer's default `refresh_reuse_leeway_secs`. */
const REUSE_LEEWAY_MS = 2_000;

/** RFC 7638 thumbprint of an EC public key. */
async function thumbprint(publicKey) {
  const { crv, kty, x, y } = await webcrypto.subtle.exportKey('jwk', publicKey);
  return createHash('sha256').update(JSON.stringify({ crv, kty, x, y })).digest('base64url');
}

/** Poll the gate until it refuses `accessToken` (401); resolve the milliseconds that took. */
async function refusedWithin(config, argus, accessToken, options = {}) {
  const start = performance.now();
  for (;;) {
    const reply = await callGate(config, argus, accessToken, '/accounts', options);
    const elapsed = performance.now() - start;
    if (reply.status !== 200) {
      assert.equal(reply.status, 401, reply.body);
      assert.equal(reply.challenge?.parameters.error, 'invalid_token');
      return elapsed;
    }
    assert.ok(elapsed < REVOCATION_DEADLINE_MS, `the gate still accepts the token ${elapsed.toFixed(0)} ms later`);
    await sleep(2);
  }
}

describe('openid-client v6: PAR, DPoP, refresh families, introspection, revocation', { timeout: 180_000 }, () => {
  let argus;
  let admin;
  let failed = false;

  /** A test; a failure shows argus's output once, at the end. */
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
    argus = await Argus.start();
    admin = await adminApi(argus);
  });

  after(async () => {
    if (!argus) return;
    await argus.stop();
    if (failed) process.stderr.write(`\n${argus.output()}\n`);
  });

  const alice = () => ({ username: 'alice', password: argus.password });

  test('PKCE through PAR: the browser carries only client_id and a one-time request_uri', async () => {
    const config = await discover(argus, DEMO_CLIENT_ID);
    assert.ok(config.serverMetadata().pushed_authorization_request_endpoint, 'PAR is advertised');
    const jar = new CookieJar();
    const { tokens, claims, authorizationUrl } = await signIn(config, { ...alice(), jar, par: true });
    assert.deepEqual([...authorizationUrl.searchParams.keys()].sort(), ['client_id', 'request_uri']);
    assert.match(authorizationUrl.searchParams.get('request_uri'), /^urn:ietf:params:oauth:request_uri:/);
    assert.equal(tokens.token_type, 'bearer');
    assert.ok(claims.sub);

    // The same request_uri again, in the same signed-in browser: no second code.
    const again = await navigate(jar, authorizationUrl, new URL('http://127.0.0.1/callback'));
    assert.ok(!again.callback?.searchParams.has('code'), `a used request_uri gave a code: ${again.callback}`);
  });

  test('a client that must push cannot send its request through the browser', async () => {
    const { client: registered } = await admin.createClient({
      client_id: 'par-only',
      name: 'PAR only',
      redirect_uris: ['http://127.0.0.1/callback'],
      allowed_scopes: ['openid', 'accounts:read'],
      token_endpoint_auth_method: 'none',
      require_pushed_authorization_requests: true,
    });
    const config = await discover(argus, registered.client_id);
    const scope = 'openid accounts:read';
    const redirectUri = new URL('http://127.0.0.1:40000/callback');
    const plain = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri.href,
      scope,
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
      state: 'plain',
    });
    const refused = await navigate(new CookieJar(), plain, redirectUri);
    assert.equal(refused.callback?.searchParams.get('error'), 'invalid_request', `${refused.callback ?? refused.html}`);
    assert.equal(refused.callback.searchParams.get('state'), 'plain');
    assert.ok(!refused.callback.searchParams.has('code'));
    const { tokens } = await signIn(config, { ...alice(), scope, par: true });
    assert.equal(typeof tokens.access_token, 'string');
  });

  test('DPoP: nonce retry at the token endpoint and at the gate, bound tokens, bound refresh', async () => {
    const log = [];
    const config = await discover(argus, DEMO_CLIENT_ID, { log });
    assert.ok(config.serverMetadata().dpop_signing_alg_values_supported?.includes('ES256'));
    const keyPair = await client.randomDPoPKeyPair('ES256');
    const DPoP = client.getDPoPHandle(config, keyPair);

    const { tokens } = await signIn(config, { ...alice(), DPoP });
    assert.equal(tokens.token_type, 'dpop');
    const tokenCalls = log.filter((l) => l.url === '/token');
    assert.deepEqual(
      tokenCalls.map((l) => [l.status, l.dpopNonceError]),
      [
        [400, true],
        [200, false],
      ],
      'openid-client retried the token request once with the server nonce',
    );
    const jkt = await thumbprint(keyPair.publicKey);
    assert.equal(jwtClaims(tokens.access_token).cnf?.jkt, jkt, 'the access token is bound to the key');

    log.length = 0;
    const call = await callGate(config, argus, tokens.access_token, '/accounts', { DPoP });
    assert.equal(call.status, 200, call.body);
    assert.deepEqual(
      log.map((l) => [l.status, l.dpopNonceError]),
      [
        [401, true],
        [200, false],
      ],
      'the gate asked for its nonce once; openid-client retried',
    );
    const again = await callGate(config, argus, tokens.access_token, '/accounts', { DPoP });
    assert.equal(again.status, 200, 'the next call carries the cached nonce');

    const asBearer = await callGate(config, argus, tokens.access_token, '/accounts');
    assert.equal(asBearer.status, 401, 'a DPoP-bound token presented as Bearer is refused');

    // The refresh token of a public client is bound to the key too.
    const otherKey = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
    await assert.rejects(
      client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP: otherKey }),
      isInvalidGrant,
    );
    await assert.rejects(client.refreshTokenGrant(config, tokens.refresh_token), isInvalidGrant, 'no proof');
    const fresh = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP });
    assert.equal(fresh.token_type, 'dpop', 'the refused attempts did not spend the token: its holder refreshes');
    assert.equal(jwtClaims(fresh.access_token).cnf?.jkt, jkt);
    assert.notEqual(fresh.refresh_token, tokens.refresh_token);
  });

  test('reuse of a rotated refresh token revokes its family and only its family', async () => {
    const config = await discover(argus, DEMO_CLIENT_ID);
    // Two browsers of alice with the same app: two sessions, two refresh families.
    const first = (await signIn(config, alice())).tokens;
    const second = (await signIn(config, alice())).tokens;
    assert.equal(jwtClaims(first.access_token).sub, jwtClaims(second.access_token).sub);

    const rotated = await client.refreshTokenGrant(config, first.refresh_token);
    assert.notEqual(rotated.refresh_token, first.refresh_token);
    assert.equal((await callGate(config, argus, rotated.access_token, '/accounts')).status, 200);

    // Within the issuer's reuse leeway (refresh_reuse_leeway_secs, 2 s by default) a second use is refused but
    // ends nothing: two tabs refreshing at once are not an attack.
    await assert.rejects(client.refreshTokenGrant(config, first.refresh_token), isInvalidGrant);
    assert.equal((await callGate(config, argus, rotated.access_token, '/accounts')).status, 200, 'family alive');

    // After it, the rotated token coming back means two holders: the family ends, with its live access tokens.
    await sleep(REUSE_LEEWAY_MS + 500);
    const reuse = performance.now();
    await assert.rejects(client.refreshTokenGrant(config, first.refresh_token), isInvalidGrant);
    const latency = await refusedWithin(config, argus, rotated.access_token);
    console.log(`family revocation after refresh reuse reached the gate in ${latency.toFixed(1)} ms`);
    assert.ok(performance.now() - reuse < REVOCATION_DEADLINE_MS);
    assert.equal((await callGate(config, argus, first.access_token, '/accounts')).status, 401);
    await assert.rejects(client.refreshTokenGrant(config, rotated.refresh_token), isInvalidGrant, 'family revoked');

    // The other session of the same user and app is untouched.
    assert.equal((await callGate(config, argus, second.access_token, '/accounts')).status, 200);
    const secondRotated = await client.refreshTokenGrant(config, second.refresh_token);
    assert.equal((await callGate(config, argus, secondRotated.access_token, '/accounts')).status, 200);
  });

  test('introspection by a resource server, and revocation by the app', async () => {
    const { client: rs, secret } = await admin.createClient({
      client_id: 'resource-server',
      name: 'Resource server',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'],
      allowed_scopes: ['argus:introspect'],
    });
    const rsConfig = await discover(argus, rs.client_id, { secret, auth: client.ClientSecretBasic(secret) });
    const app = await discover(argus, DEMO_CLIENT_ID);
    const { tokens, claims } = await signIn(app, alice());

    const access = await client.tokenIntrospection(rsConfig, tokens.access_token);
    assert.equal(access.active, true);
    assert.equal(access.sub, claims.sub);
    assert.equal(access.client_id, DEMO_CLIENT_ID);
    assert.equal(access.iss, argus.urls.issuer);
    assert.ok(access.scope.split(' ').includes('accounts:read'));
    assert.ok(access.exp > Date.now() / 1000);
    const refresh = await client.tokenIntrospection(rsConfig, tokens.refresh_token, {
      token_type_hint: 'refresh_token',
    });
    assert.equal(refresh.active, true);
    assert.equal(refresh.client_id, DEMO_CLIENT_ID);
    assert.equal(refresh.sub, claims.sub);

    const start = performance.now();
    await client.tokenRevocation(app, tokens.access_token, { token_type_hint: 'access_token' });
    assert.equal((await client.tokenIntrospection(rsConfig, tokens.access_token)).active, false);
    const latency = await refusedWithin(app, argus, tokens.access_token);
    console.log(`access-token revocation reached the gate in ${latency.toFixed(1)} ms (${(performance.now() - start).toFixed(1)} ms from the request)`);

    await client.tokenRevocation(app, tokens.refresh_token, { token_type_hint: 'refresh_token' });
    assert.equal((await client.tokenIntrospection(rsConfig, tokens.refresh_token)).active, false);
    await assert.rejects(client.refreshTokenGrant(app, tokens.refresh_token), isInvalidGrant);

    // Unknown tokens are not an error (RFC 7009 §2.2, RFC 7662 §2.2).
    await client.tokenRevocation(app, 'not-a-token');
    assert.equal((await client.tokenIntrospection(rsConfig, 'not-a-token')).active, false);
  });
});
