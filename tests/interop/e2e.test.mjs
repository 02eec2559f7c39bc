// End-to-end: `argus up --demo` driven by npm openid-client v6, a client nobody on this project wrote.
//
// A user signs in through the issuer's HTML login and consent forms (authorization code + PKCE), calls the demo API
// through the gate, refreshes (rotation: the old refresh token is dead), revokes, and the gate then refuses the token.
// The browser part is plain fetch with a tiny cookie jar (lib/browser.mjs); everything OAuth is openid-client,
// unmodified. The binary is started by lib/argus.mjs ($ARGUS_BIN, ephemeral ports, a fresh data directory).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import * as client from 'openid-client';

import { Argus } from './lib/argus.mjs';
import { DEMO_CLIENT_ID as CLIENT_ID, callGate, isInvalidGrant, signIn } from './lib/oauth.mjs';

const REVOCATION_DEADLINE_MS = 5_000;

// ---------------------------------------------------------------------------------------------------------------
// Calls through the gate

async function accountsOf(config, argus, accessToken) {
  const reply = await callGate(config, argus, accessToken, '/accounts');
  assert.equal(reply.status, 200, `GET /accounts through the gate: ${reply.status} ${reply.body}`);
  const accounts = JSON.parse(reply.body);
  assert.ok(Array.isArray(accounts), `not an array: ${reply.body}`);
  assert.ok(accounts.length > 0, 'a demo user has accounts');
  for (const account of accounts) {
    assert.ok(Number.isSafeInteger(account.id) && account.id > 0, `account id ${account.id}`);
    assert.ok(Number.isSafeInteger(account.balance), `balance ${account.balance}`);
  }
  return accounts;
}

// ---------------------------------------------------------------------------------------------------------------
// The loop

describe('argus up --demo with openid-client', { timeout: 120_000 }, () => {
  let argus;
  let config;
  let failed = false;
  const alice = {};

  /** Run a step; remember a failure so that argus's output is shown once at the end. */
  const step = (name, fn) =>
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
  });

  after(async () => {
    if (!argus) return;
    await argus.stop();
    if (failed) process.stderr.write(`\n${argus.output()}\n`);
  });

  step('discovers the issuer', async () => {
    config = await client.discovery(new URL(argus.urls.issuer), CLIENT_ID, undefined, client.None(), {
      execute: [client.allowInsecureRequests],
    });
    const metadata = config.serverMetadata();
    assert.equal(new URL(metadata.issuer).href, new URL(argus.urls.issuer).href);
    assert.ok(metadata.code_challenge_methods_supported?.includes('S256'));
    assert.ok(metadata.revocation_endpoint, 'a revocation endpoint is advertised');
  });

  step('signs alice in with the code flow, PKCE and the HTML forms', async () => {
    assert.ok(config, 'needs discovery');
    const result = await signIn(config, { username: 'alice', password: argus.password, scope: 'openid profile accounts:read' });
    assert.deepEqual(result.pages, ['login', 'consent']);
    const { tokens, claims } = result;
    assert.equal(typeof tokens.access_token, 'string');
    assert.equal(typeof tokens.refresh_token, 'string');
    assert.equal(typeof tokens.id_token, 'string');
    assert.equal(tokens.token_type, 'bearer');
    assert.ok(tokens.expiresIn() > 0);
    assert.equal(typeof claims.sub, 'string');
    assert.ok(claims.sub.length > 0);
    assert.notEqual(claims.sub, 'alice', 'sub is an opaque identifier, not the username');
    assert.ok(claims.nonce, 'the id_token carries the nonce (openid-client checked its value)');
    Object.assign(alice, { tokens, sub: claims.sub });
  });

  step('calls the demo API through the gate', async () => {
    assert.ok(alice.tokens, 'needs the sign-in');
    const accounts = await accountsOf(config, argus, alice.tokens.access_token);
    assert.ok(accounts.every((a) => a.owner === 'alice'), JSON.stringify(accounts));
    alice.accountIds = accounts.map((a) => a.id);

    const anonymous = await fetch(new URL('/accounts', argus.urls.gate));
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Bearer\b/i);
    await anonymous.body?.cancel();
  });

  step('keeps bob away from alice’s accounts', async () => {
    assert.ok(alice.accountIds, 'needs alice’s accounts');
    const bob = await signIn(config, { username: 'bob', password: argus.password, scope: 'openid profile accounts:read' });
    assert.notEqual(bob.claims.sub, alice.sub);
    const accounts = await accountsOf(config, argus, bob.tokens.access_token);
    assert.ok(accounts.every((a) => a.owner === 'bob'), JSON.stringify(accounts));
    const shared = accounts.filter((a) => alice.accountIds.includes(a.id));
    assert.deepEqual(shared, [], 'bob’s list holds none of alice’s account ids');
  });

  step('rotates the refresh token; the old one is dead', async () => {
    assert.ok(alice.tokens, 'needs the sign-in');
    const old = alice.tokens;
    const fresh = await client.refreshTokenGrant(config, old.refresh_token);
    assert.equal(typeof fresh.access_token, 'string');
    assert.notEqual(fresh.access_token, old.access_token);
    assert.equal(typeof fresh.refresh_token, 'string');
    assert.notEqual(fresh.refresh_token, old.refresh_token, 'refresh tokens rotate');
    const accounts = await accountsOf(config, argus, fresh.access_token);
    assert.deepEqual(accounts.map((a) => a.id), alice.accountIds);

    await assert.rejects(client.refreshTokenGrant(config, old.refresh_token), isInvalidGrant);
  });

  step('revokes; the gate refuses the token within milliseconds', async () => {
    assert.ok(config, 'needs discovery');
    // A new browser, so this token set is independent of the family the reuse above may have revoked.
    const { tokens, claims } = await signIn(config, { username: 'alice', password: argus.password, scope: 'openid profile accounts:read' });
    assert.equal(claims.sub, alice.sub);
    const beforeRevocation = await callGate(config, argus, tokens.access_token, '/accounts');
    assert.equal(beforeRevocation.status, 200, 'the token works before it is revoked');

    const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
    assert.equal(userinfo.sub, alice.sub);
    assert.equal(userinfo.preferred_username, 'alice');

    const start = performance.now();
    await client.tokenRevocation(config, tokens.access_token, { token_type_hint: 'access_token' });
    let refusal;
    while (!refusal) {
      const reply = await callGate(config, argus, tokens.access_token, '/accounts');
      const elapsed = performance.now() - start;
      if (reply.status !== 200) refusal = { ...reply, elapsed };
      else if (elapsed > REVOCATION_DEADLINE_MS) assert.fail(`the gate still accepts the token ${elapsed.toFixed(0)} ms after revocation`);
      else await sleep(2);
    }
    assert.equal(refusal.status, 401, refusal.body);
    assert.equal(refusal.challenge?.parameters.error, 'invalid_token');
    console.log(`revocation reached the gate in ${refusal.elapsed.toFixed(1)} ms`);

    await client.tokenRevocation(config, tokens.refresh_token, { token_type_hint: 'refresh_token' });
    await assert.rejects(client.refreshTokenGrant(config, tokens.refresh_token), isInvalidGrant);
  });
});
