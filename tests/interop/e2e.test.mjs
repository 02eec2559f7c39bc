// End-to-end: `argus up --demo` driven by npm openid-client v6, a client nobody on this project wrote.
//
// A user signs in through the issuer's HTML login and consent forms (authorization code + PKCE), calls the demo API
// through the gate, refreshes (rotation: the old refresh token is dead), revokes, and the gate then refuses the token.
// The browser part is plain fetch with a tiny cookie jar; everything OAuth is openid-client, unmodified.
//
// The binary is $ARGUS_BIN, else target/debug/argus of this repository. Every listener is on 127.0.0.1:0 and the
// data directory is fresh, so runs never collide with each other or with a developer's `argus up`.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import * as client from 'openid-client';

const HERE = dirname(fileURLToPath(import.meta.url));
const ARGUS_BIN = process.env.ARGUS_BIN || resolve(HERE, '../../target/debug/argus');
const CLIENT_ID = 'demo-app';
const STARTUP_TIMEOUT_MS = 30_000;
const REVOCATION_DEADLINE_MS = 5_000;
const PART_LINE = /^\s+(issuer|gate|watch|demo-api)\s+(http:\/\/\S+)/gm;
const PARTS = ['issuer', 'gate', 'watch', 'demo-api'];
const CONFIG_TOML = `[issuer]
listen = "127.0.0.1:0"
[gate]
listen = "127.0.0.1:0"
[watch]
listen = "127.0.0.1:0"
[demo]
listen = "127.0.0.1:0"
`;

// ---------------------------------------------------------------------------------------------------------------
// The argus process

/** A running `argus up --demo`: its part URLs, its output, and how to stop it. */
class Argus {
  constructor(child, tmp, password) {
    this.child = child;
    this.tmp = tmp;
    this.password = password;
    this.stdout = '';
    this.stderr = '';
    this.urls = {};
    this.exited = new Promise((done) => child.once('exit', (code, signal) => done({ code, signal })));
    child.stdout.setEncoding('utf8').on('data', (chunk) => (this.stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk) => (this.stderr += chunk));
  }

  static async start() {
    const tmp = await mkdtemp(join(tmpdir(), 'argus-interop-'));
    const configPath = join(tmp, 'argus.toml');
    await writeFile(configPath, CONFIG_TOML);
    // Hex, so it never starts with '-' (which the command line would read as a flag).
    const password = randomBytes(16).toString('hex');
    const args = ['up', '--demo', '--data-dir', join(tmp, 'data'), '--demo-password', password, '--config', configPath];
    const child = spawn(ARGUS_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const argus = new Argus(child, tmp, password);
    const spawned = new Promise((ok, fail) => {
      child.once('spawn', ok);
      child.once('error', (err) => fail(new Error(`cannot start ${ARGUS_BIN}: ${err.message}`)));
    });
    try {
      await spawned;
      await argus.waitForParts();
    } catch (err) {
      await argus.stop();
      throw err;
    }
    return argus;
  }

  /** Resolve once the banner named all four parts; fail if argus exits first or takes longer than 30 s. */
  async waitForParts() {
    const deadline = performance.now() + STARTUP_TIMEOUT_MS;
    let exit;
    this.exited.then((e) => (exit = e));
    while (performance.now() < deadline) {
      for (const [, part, url] of this.stdout.matchAll(PART_LINE)) {
        this.urls[part] = url.replace(/\/+$/, '');
      }
      if (PARTS.every((p) => this.urls[p])) return;
      if (exit) {
        throw new Error(`argus exited (${exit.code ?? exit.signal}) before it was up\n${this.output()}`);
      }
      await sleep(25);
    }
    throw new Error(`argus did not print all of ${PARTS.join(', ')} within ${STARTUP_TIMEOUT_MS} ms\n${this.output()}`);
  }

  output() {
    return `--- argus stdout ---\n${this.stdout}\n--- argus stderr (last 20000 chars) ---\n${this.stderr.slice(-20_000)}`;
  }

  /** SIGTERM, then SIGKILL if it is still running after 5 s; then remove the temp directory. */
  async stop() {
    // No pid: the binary never started, and no 'exit' will come.
    const running = this.child.pid !== undefined && this.child.exitCode === null && this.child.signalCode === null;
    if (running) {
      this.child.kill('SIGTERM');
      // The grace timer is cancelled once argus exits, so it does not hold this process open for 5 s.
      const grace = new AbortController();
      const timeout = sleep(5_000, false, { signal: grace.signal }).catch(() => true);
      const stopped = await Promise.race([this.exited.then(() => true), timeout]);
      grace.abort();
      if (!stopped) {
        this.child.kill('SIGKILL');
        await this.exited;
      }
    }
    await rm(this.tmp, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The browser part: fetch with a cookie jar, HTML forms as the issuer's contract writes them

/** Cookies of one browser for one origin (all we talk to with cookies is the issuer). */
class CookieJar {
  #cookies = new Map();

  store(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((a) => {
        const [key, val = ''] = a.split('=').map((s) => s.trim());
        if (/^max-age$/i.test(key)) return Number(val) <= 0;
        if (/^expires$/i.test(key)) return Date.parse(val) <= Date.now();
        return false;
      });
      if (expired) this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }

  header() {
    return [...this.#cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }
}

const HTML_ENTITIES = { amp: '&', quot: '"', '#x27': "'", lt: '<', gt: '>' };

/** Undo the issuer's HTML escaping of attribute values, in one pass (so "&amp;lt;" stays "&lt;"). */
function unescapeHtml(text) {
  return text.replace(/&(amp|quot|#x27|lt|gt);/g, (_, entity) => HTML_ENTITIES[entity]);
}

/** The body of `<form method="post" action="ACTION">` in `html`, or null when the page has no such form. */
function formBody(html, action) {
  const start = html.indexOf(`<form method="post" action="${action}">`);
  if (start < 0) return null;
  const end = html.indexOf('</form>', start);
  return html.slice(start, end < 0 ? undefined : end);
}

/** The hidden inputs of a form, written exactly `<input type="hidden" name="NAME" value="VALUE">`. */
function hiddenInputs(form) {
  const fields = new URLSearchParams();
  for (const [, name, value] of form.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)) {
    fields.append(unescapeHtml(name), unescapeHtml(value));
  }
  return fields;
}

function sameEndpoint(a, b) {
  return a.origin === b.origin && a.pathname === b.pathname;
}

/**
 * Load `url` like a browser: follow 302/303 redirects that stay on the issuer; stop at the app's redirect_uri.
 * Returns `{ callback }` when the issuer sent the browser back to the app, else `{ url, status, html }`.
 */
async function navigate(jar, url, redirectUri, init = { method: 'GET' }) {
  const issuerOrigin = url.origin;
  for (let hop = 0; hop < 10; hop++) {
    const headers = new Headers(init.headers);
    const cookies = jar.header();
    if (cookies) headers.set('cookie', cookies);
    if (init.method === 'POST') headers.set('origin', issuerOrigin);
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    jar.store(response);
    if (response.status === 302 || response.status === 303) {
      await response.body?.cancel();
      const location = new URL(response.headers.get('location'), url);
      if (sameEndpoint(location, redirectUri)) return { callback: location };
      assert.equal(location.origin, issuerOrigin, `the issuer redirected off the issuer to ${location}`);
      url = location;
      init = { method: 'GET' };
      continue;
    }
    return { url, status: response.status, html: await response.text() };
  }
  throw new Error('more than 10 redirects');
}

async function submit(jar, page, action, fields, redirectUri) {
  const target = new URL(action, page.url);
  return navigate(jar, target, redirectUri, { method: 'POST', body: fields });
}

/**
 * Sign `username` in through the HTML forms and exchange the code with openid-client. A fresh `jar` is a new
 * browser. Returns the token response, the id_token claims and the kinds of page the browser went through.
 */
async function signIn(config, { username, password, scope, jar = new CookieJar() }) {
  const redirectUri = new URL(`http://127.0.0.1:${randomInt(20_000, 60_000)}/callback`);
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const codeChallenge = await client.calculatePKCECodeChallenge(pkceCodeVerifier);
  const expectedState = client.randomState();
  const expectedNonce = client.randomNonce();
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri.href,
    scope,
    code_challenge: codeChallenge,
    code_challenge_method: 'S256',
    state: expectedState,
    nonce: expectedNonce,
  });

  const pages = [];
  let page = await navigate(jar, authorizationUrl, redirectUri);
  while (!page.callback) {
    assert.ok(pages.length < 4, `sign-in did not finish; pages seen: ${pages.join(', ')}`);
    assert.equal(page.status, 200, `unexpected page ${page.url} (${page.status}):\n${page.html.slice(0, 2000)}`);
    const login = formBody(page.html, '/login');
    const consent = formBody(page.html, '/consent');
    if (login !== null) {
      assert.ok(!pages.includes('login'), `the login form came back: wrong password?\n${page.html.slice(0, 2000)}`);
      assert.match(login, /name="username"/);
      assert.match(login, /name="password"/);
      pages.push('login');
      const fields = hiddenInputs(login);
      fields.set('username', username);
      fields.set('password', password);
      page = await submit(jar, page, '/login', fields, redirectUri);
    } else if (consent !== null) {
      assert.match(consent, /<button type="submit" name="decision" value="allow">/);
      assert.match(consent, /<button type="submit" name="decision" value="deny">/);
      pages.push('consent');
      const fields = hiddenInputs(consent);
      fields.set('decision', 'allow');
      page = await submit(jar, page, '/consent', fields, redirectUri);
    } else {
      assert.fail(`neither a login nor a consent form at ${page.url}:\n${page.html.slice(0, 2000)}`);
    }
  }

  const callback = page.callback;
  assert.equal(callback.searchParams.get('state'), expectedState);
  assert.ok(callback.searchParams.get('code'), `no code in ${callback}`);
  assert.equal(callback.searchParams.get('iss'), config.serverMetadata().issuer);

  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier,
    expectedState,
    expectedNonce,
  });
  return { tokens, claims: tokens.claims(), pages };
}

// ---------------------------------------------------------------------------------------------------------------
// Calls through the gate

/**
 * GET `path` at the gate with openid-client. A refusal with a `WWW-Authenticate` challenge makes openid-client
 * throw; it is turned back into `{ status, challenge }` so callers can assert on it.
 */
async function callGate(config, gate, accessToken, path) {
  try {
    const response = await client.fetchProtectedResource(config, accessToken, new URL(path, gate), 'GET');
    return { status: response.status, body: await response.text(), challenge: undefined };
  } catch (err) {
    if (err instanceof client.WWWAuthenticateChallengeError) {
      const challenge = err.cause.find((c) => c.scheme === 'bearer');
      return { status: err.status, body: await err.response.text().catch(() => ''), challenge };
    }
    throw err;
  }
}

async function accountsOf(config, gate, accessToken) {
  const reply = await callGate(config, gate, accessToken, '/accounts');
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

function isInvalidGrant(err) {
  return err instanceof client.ResponseBodyError && err.error === 'invalid_grant';
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
    const accounts = await accountsOf(config, argus.urls.gate, alice.tokens.access_token);
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
    const accounts = await accountsOf(config, argus.urls.gate, bob.tokens.access_token);
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
    const accounts = await accountsOf(config, argus.urls.gate, fresh.access_token);
    assert.deepEqual(accounts.map((a) => a.id), alice.accountIds);

    await assert.rejects(client.refreshTokenGrant(config, old.refresh_token), isInvalidGrant);
  });

  step('revokes; the gate refuses the token within milliseconds', async () => {
    assert.ok(config, 'needs discovery');
    // A new browser, so this token set is independent of the family the reuse above may have revoked.
    const { tokens, claims } = await signIn(config, { username: 'alice', password: argus.password, scope: 'openid profile accounts:read' });
    assert.equal(claims.sub, alice.sub);
    const beforeRevocation = await callGate(config, argus.urls.gate, tokens.access_token, '/accounts');
    assert.equal(beforeRevocation.status, 200, 'the token works before it is revoked');

    const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
    assert.equal(userinfo.sub, alice.sub);
    assert.equal(userinfo.preferred_username, 'alice');

    const start = performance.now();
    await client.tokenRevocation(config, tokens.access_token, { token_type_hint: 'access_token' });
    let refusal;
    while (!refusal) {
      const reply = await callGate(config, argus.urls.gate, tokens.access_token, '/accounts');
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
