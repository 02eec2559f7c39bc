// npm oauth4webapi, unmodified, against `argus up --demo`: its resource-server side (`validateJwtAccessToken`, RFC 9068
// and RFC 9449 §7) accepts Argus's access tokens, Bearer and DPoP-bound, and refuses them where it must; its client
// side gets DPoP-bound tokens from the token endpoint and calls the API through the gate with
// `protectedResourceRequest`, answering both servers' `use_dpop_nonce` the documented way (`isDPoPNonceError`).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import * as oauth from 'oauth4webapi';

import { Argus } from './lib/argus.mjs';
import { CookieJar, authorizeInBrowser } from './lib/browser.mjs';
import { DEMO_CLIENT_ID } from './lib/oauth.mjs';

const INSECURE = { [oauth.allowInsecureRequests]: true }; // plain http on 127.0.0.1 only
const SCOPE = 'accounts:read';

/** Run `request`; when the server answers `use_dpop_nonce`, run it once more (the handle now holds the nonce). */
async function withNonceRetry(request) {
  try {
    return { result: await request(), retried: false };
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err;
    return { result: await request(), retried: true };
  }
}

describe('oauth4webapi: validateJwtAccessToken and DPoP against Argus', { timeout: 120_000 }, () => {
  let argus;
  let as;
  let failed = false;
  const app = { client_id: DEMO_CLIENT_ID };
  const jar = new CookieJar();

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
    const issuer = new URL(argus.urls.issuer);
    as = await oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...INSECURE }),
    );
  });

  after(async () => {
    if (!argus) return;
    await argus.stop();
    if (failed) process.stderr.write(`\n${argus.output()}\n`);
  });

  /** Authorization code + PKCE with oauth4webapi (the browser part through the HTML forms); optionally DPoP. */
  async function codeFlow(DPoP) {
    const redirectUri = new URL(`http://127.0.0.1:${randomInt(20_000, 60_000)}/callback`);
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const url = new URL(as.authorization_endpoint);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: app.client_id,
      redirect_uri: redirectUri.href,
      scope: SCOPE,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
    }).toString();
    const { callback } = await authorizeInBrowser(jar, url, redirectUri, { username: 'alice', password: argus.password });
    const params = oauth.validateAuthResponse(as, app, callback, state);
    const { result, retried } = await withNonceRetry(async () => {
      const response = await oauth.authorizationCodeGrantRequest(as, app, oauth.None(), params, redirectUri.href, verifier, {
        DPoP,
        ...INSECURE,
      });
      return oauth.processAuthorizationCodeResponse(as, app, response);
    });
    return { tokens: result, retried };
  }

  /** The request oauth4webapi's `protectedResourceRequest` would send to `url`, captured instead of sent. */
  async function preparedRequest(accessToken, url, DPoP) {
    let captured;
    await oauth.protectedResourceRequest(accessToken, 'GET', url, new Headers(), null, {
      DPoP,
      ...INSECURE,
      [oauth.customFetch]: async (target, init) => {
        captured = new Request(target, init);
        return new Response(null, { status: 204 });
      },
    });
    return captured;
  }

  test('validateJwtAccessToken accepts an Argus Bearer token and refuses a wrong audience or signature', async () => {
    const { tokens } = await codeFlow();
    assert.equal(tokens.token_type, 'bearer');
    const api = new URL('/accounts', argus.urls.gate);
    const request = await preparedRequest(tokens.access_token, api);
    assert.equal(request.headers.get('authorization'), `Bearer ${tokens.access_token}`);

    const claims = await oauth.validateJwtAccessToken(as, request, argus.urls.gate, INSECURE);
    assert.equal(claims.iss, argus.urls.issuer);
    assert.equal(claims.client_id, DEMO_CLIENT_ID);
    assert.ok(claims.sub && claims.jti && claims.iat && claims.exp);
    assert.ok(claims.scope.split(' ').includes(SCOPE));
    assert.equal(claims.cnf, undefined, 'a Bearer token has no confirmation');

    await assert.rejects(oauth.validateJwtAccessToken(as, request, 'https://another-api.example', INSECURE));
    const [header, payload, signature] = tokens.access_token.split('.');
    const forged = `${header}.${payload}.${signature.startsWith('A') ? 'B' : 'A'}${signature.slice(1)}`;
    await assert.rejects(
      oauth.validateJwtAccessToken(as, await preparedRequest(forged, api), argus.urls.gate, INSECURE),
    );
    await assert.rejects(
      oauth.validateJwtAccessToken(as, request, argus.urls.gate, { requireDPoP: true, ...INSECURE }),
      'a Bearer token where DPoP is required',
    );
  });

  test('validateJwtAccessToken checks a DPoP-bound Argus token with its proof', async () => {
    const keyPair = await oauth.generateKeyPair('ES256');
    const { tokens, retried } = await codeFlow(oauth.DPoP(app, keyPair));
    assert.ok(retried, 'the token endpoint asked for its DPoP nonce first');
    assert.equal(tokens.token_type, 'dpop');
    const api = new URL('/accounts', argus.urls.gate);
    const request = await preparedRequest(tokens.access_token, api, oauth.DPoP(app, keyPair));
    assert.equal(request.headers.get('authorization'), `DPoP ${tokens.access_token}`);
    assert.ok(request.headers.get('dpop'));

    const claims = await oauth.validateJwtAccessToken(as, request, argus.urls.gate, { requireDPoP: true, ...INSECURE });
    assert.ok(claims.cnf?.jkt, 'bound to the key');

    // The bound token without its proof, with a proof of another key, or with a proof for another URL.
    const bare = await preparedRequest(tokens.access_token, api);
    await assert.rejects(oauth.validateJwtAccessToken(as, bare, argus.urls.gate, INSECURE));
    const stranger = oauth.DPoP(app, await oauth.generateKeyPair('ES256'));
    const wrongKey = await preparedRequest(tokens.access_token, api, stranger);
    await assert.rejects(oauth.validateJwtAccessToken(as, wrongKey, argus.urls.gate, INSECURE));
    const elsewhere = new Request(new URL('/transfers', argus.urls.gate), { headers: request.headers });
    await assert.rejects(oauth.validateJwtAccessToken(as, elsewhere, argus.urls.gate, INSECURE));
  });

  test('protectedResourceRequest with DPoP through the gate, with the gate nonce retry', async () => {
    const keyPair = await oauth.generateKeyPair('ES256');
    const { tokens } = await codeFlow(oauth.DPoP(app, keyPair));
    const api = new URL('/accounts', argus.urls.gate);
    const DPoP = oauth.DPoP(app, keyPair);

    const { result: response, retried } = await withNonceRetry(() =>
      oauth.protectedResourceRequest(tokens.access_token, 'GET', api, new Headers(), null, { DPoP, ...INSECURE }),
    );
    assert.ok(retried, 'the gate asked for its DPoP nonce first');
    assert.equal(response.status, 200, await response.clone().text());
    const accounts = await response.json();
    assert.ok(accounts.length > 0 && accounts.every((a) => a.owner === 'alice'), JSON.stringify(accounts));

    // The nonce is now cached in the handle: the next call goes through at once.
    const next = await oauth.protectedResourceRequest(tokens.access_token, 'GET', api, new Headers(), null, {
      DPoP,
      ...INSECURE,
    });
    assert.equal(next.status, 200);

    // A proof from another key: the gate refuses with an RFC 9449 §7.1 challenge, which oauth4webapi surfaces as
    // a WWWAuthenticateChallengeError.
    const stranger = oauth.DPoP(app, await oauth.generateKeyPair('ES256'));
    const refusal = await withNonceRetry(() =>
      oauth.protectedResourceRequest(tokens.access_token, 'GET', api, new Headers(), null, {
        DPoP: stranger,
        ...INSECURE,
      }),
    ).then(
      () => assert.fail('the gate accepted a proof from another key'),
      (err) => err,
    );
    assert.ok(refusal instanceof oauth.WWWAuthenticateChallengeError, `${refusal}`);
    assert.equal(refusal.status, 401);
    const challenge = refusal.cause.find((c) => c.scheme === 'dpop');
    assert.ok(challenge, `a DPoP challenge: ${JSON.stringify(refusal.cause)}`);
    assert.ok(['invalid_token', 'invalid_dpop_proof'].includes(challenge.parameters.error), JSON.stringify(challenge));
  });
});
