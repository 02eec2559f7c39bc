// The end user's side of issue 5, end to end in headless Chromium: the real `argus up --demo`, the issuer's real
// pages, the gate in front of the demo API, and the demo app's backend played by npm oauth4webapi (authorization
// code + PKCE, the id_token checked, the gate's RFC 9470 challenge parsed by its WWW-Authenticate reader).
//
// alice signs in to the app in Chromium (password, consent), the app reads her accounts through the gate; the
// account page shows the new-device notice; she turns on an authenticator app (TOTP codes computed here, RFC 6238
// with node:crypto); the app's transfer is refused with an `insufficient_user_authentication` challenge; the app
// sends her to sign in again with the challenge's `max_age` and `acr_values`, she gives her password and a code, and
// the transfer passes; on the account page she removes the app's access with its button, and the app's still
// unexpired access token is refused by the gate and its refresh token by the issuer.
//
// The gate's route is the demo API's own spec with one change: moving money needs a second factor
// (`acr: urn:argus:acr:mfa`) besides the demo's `max_age: 300`, so a fresh password-only sign-in meets a challenge
// without the test waiting five minutes.
//
// The second test keeps the demo's routes as they are and configures a trigger instead: a factor added to the
// account → `require_step_up`. After alice turns on her authenticator app, the app's next call (the demo's own
// POST /transfers) meets the challenge, and a new sign-in (password and code) passes it.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import * as oauth from 'oauth4webapi';

import { CLIENT_ID, authorizationRequest, callbackOf, discover, exchange, submitPassword } from './lib/app.mjs';
import { freePort, startArgus } from './lib/argus.mjs';
import { chromiumMissing, launchChromium } from './lib/chromium.mjs';

const skip = chromiumMissing();
const PWD = 'urn:argus:acr:pwd';
const MFA = 'urn:argus:acr:mfa';
const SCOPE = 'openid accounts:read transfers:write';
const HERE = dirname(fileURLToPath(import.meta.url));
const DEMO_SPEC = resolve(HERE, '../../crates/argus-demo/openapi.yaml');
const DEMO_STEP_UP = 'x-argus-step-up: {max_age: 300}';
const STEP_SECS = 30;

/** The `argus up --demo` of the first test (a gate route of its own) and its discovery document. */
let main;
let browser;
/** This test's temp directory: the gate's spec and the account page's screenshot. */
let tmp;
let failed = false;

before(async () => {
  if (skip) return;
  tmp = await mkdtemp(join(tmpdir(), 'argus-account-browser-'));
  const spec = await readFile(DEMO_SPEC, 'utf8');
  assert.ok(spec.includes(DEMO_STEP_UP), `the demo spec still marks POST /transfers with ${DEMO_STEP_UP}`);
  const specPath = join(tmp, 'demo-mfa.yaml');
  await writeFile(specPath, spec.replace(DEMO_STEP_UP, `x-argus-step-up: {acr: "${MFA}", max_age: 300}`));
  const demoPort = await freePort();
  main = await start({
    demoPort,
    config: `
[[gate.routes]]
name = "demo-mfa"
prefix = "/"
upstream = "http://127.0.0.1:${demoPort}"
auth = "argus"
openapi = ${JSON.stringify(specPath)}
strict = true
`,
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await stop(main);
  // KEEP_SCREENSHOT=1 keeps the temp directory (and the account page's screenshot) for a look.
  if (tmp && !process.env.KEEP_SCREENSHOT) await rm(tmp, { recursive: true, force: true });
  else if (tmp) console.log(`screenshot kept in ${tmp}`);
});

/** `argus up --demo` with `options` (see lib/argus.mjs), and the issuer's discovery document. */
async function start(options) {
  const argus = await startArgus(options);
  try {
    return { argus, as: await discover(argus.issuerUrl) };
  } catch (err) {
    await argus.stop();
    throw err;
  }
}

/** Stop it, showing what it logged if a test failed (or with ARGUS_OUTPUT=1). */
async function stop(env) {
  if (!env) return;
  if (failed || process.env.ARGUS_OUTPUT) console.log(env.argus.output());
  await env.argus.stop();
}

/** Run `fn(page)` on a new page of the browser; a failure is remembered so the server's log is shown. */
async function onPage(fn) {
  const page = await browser.context.newPage();
  try {
    await fn(page);
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    await page.close();
  }
}

/** Allow on the consent page if it is shown. */
async function consentIfAsked(page) {
  const allow = page.locator('button[name="decision"][value="allow"]');
  if (await allow.count()) await Promise.all([page.waitForLoadState('load'), allow.click()]);
}

/** The body of the JWT's payload. */
function payload(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
}

/** RFC 4648 base32 (no padding, as authenticator apps take it) to bytes. */
function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out = [];
  for (const c of text.replace(/[\s=]/g, '').toUpperCase()) {
    const index = alphabet.indexOf(c);
    assert.ok(index >= 0, `base32 character ${c}`);
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** The RFC 6238 code (HMAC-SHA1, 6 digits, 30 s steps, as an authenticator app shows it) of time step `step`. */
function totp(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', secret).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const binary = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 1_000_000).padStart(6, '0');
}

const stepNow = () => Math.floor(Date.now() / 1000 / STEP_SECS);

/** Sleep into the time step after `step`, with a margin, so the authenticator app shows a new code. */
async function nextStep(step) {
  const at = (step + 1) * STEP_SECS * 1000 + 200;
  await sleep(Math.max(0, at - Date.now()));
}

/** A call to the demo API through the gate with the app's access token (oauth4webapi reads any challenge). */
async function callGate({ argus }, accessToken, method, path, body) {
  const headers = new Headers({ accept: 'application/json' });
  if (body !== undefined) headers.set('content-type', 'application/json');
  try {
    const response = await oauth.protectedResourceRequest(
      accessToken,
      method,
      new URL(path, argus.urls.gate),
      headers,
      body === undefined ? null : JSON.stringify(body),
      { [oauth.allowInsecureRequests]: true },
    );
    return { status: response.status, body: await response.text() };
  } catch (err) {
    if (!(err instanceof oauth.WWWAuthenticateChallengeError)) throw err;
    return { status: err.status, body: await err.response.text(), challenges: err.cause };
  }
}

/** The step-up challenge of a refused call. */
function stepUpChallenge(refused) {
  assert.equal(refused.status, 401, refused.body);
  const challenge = refused.challenges?.find((c) => c.scheme === 'bearer');
  assert.ok(challenge, `a Bearer challenge: ${JSON.stringify(refused.challenges)}`);
  assert.equal(challenge.parameters.error, 'insufficient_user_authentication');
  return challenge;
}

/** Refresh with the app's refresh token: the token response, or the error oauth4webapi read from it. */
async function refresh({ as }, refreshToken) {
  const client = { client_id: CLIENT_ID };
  const response = await oauth.refreshTokenGrantRequest(as, client, oauth.None(), refreshToken, {
    [oauth.allowInsecureRequests]: true,
  });
  try {
    return { tokens: await oauth.processRefreshTokenResponse(as, client, response) };
  } catch (err) {
    if (err instanceof oauth.ResponseBodyError) return { error: err.error, status: err.status };
    throw err;
  }
}

/** The texts of the elements `selector` matches on the page. */
const texts = (page, selector) => page.locator(selector).allTextContents();

/** alice signs in to the app: login form, consent, the redirect with the code, the code exchanged. */
async function signInToApp({ argus, as }, page) {
  const request = await authorizationRequest(as, SCOPE);
  const callback = callbackOf(page);
  await submitPassword(page, request.url, 'alice', argus.password);
  assert.equal(await page.locator('button[name="decision"][value="allow"]').count(), 1, 'the consent page is shown');
  await consentIfAsked(page);
  const signedIn = await exchange(as, request, await callback);
  assert.equal(signedIn.claims.acr, PWD, 'a password sign-in');
  assert.ok(signedIn.tokens.refresh_token, 'the app got a refresh token');
  return signedIn;
}

/** Two of alice's EUR accounts, read through the gate with `accessToken`, and a transfer between them. */
async function transferOf(env, accessToken) {
  const accounts = await callGate(env, accessToken, 'GET', '/accounts');
  assert.equal(accounts.status, 200, accounts.body);
  const list = JSON.parse(accounts.body);
  const [from, to] = (list.accounts ?? list).filter((a) => a.currency === 'EUR');
  assert.ok(to, `alice has two EUR accounts: ${accounts.body}`);
  return { from_account: from.id, to_account: to.id, amount: 1250, currency: 'EUR', memo: 'step-up test' };
}

/**
 * alice turns on an authenticator app on /account/totp: the key from the page, a code computed from it. Returns the
 * key, and the time step and code used.
 */
async function enrolTotp({ argus }, page) {
  await page.goto(`${argus.issuerUrl}/account`);
  await page.click('nav a[href="/account/totp"]');
  await page.waitForURL(`${argus.issuerUrl}/account/totp`);
  assert.equal(await page.locator('.qr svg').count(), 1, 'a QR code is shown');
  const key = (await page.textContent('#totp-secret')).trim();
  const otpauth = new URL(await page.getAttribute('a[href^="otpauth://"]', 'href'));
  assert.equal(otpauth.searchParams.get('secret'), key, 'the QR code holds the same key');
  const secret = base32Decode(key);
  const step = stepNow();
  const code = totp(secret, step);
  await page.fill('#code', code);
  await Promise.all([page.waitForLoadState('load'), page.click('form[action="/account/totp"] button[type="submit"]')]);
  assert.equal(await page.textContent('h1'), 'Your authenticator app is set up');
  assert.equal(await page.locator('ul.codes li').count(), 10, 'recovery codes are shown once');
  return { secret, step, code };
}

/**
 * The app sends alice to sign in again with the challenge's `max_age` and `acr_values`: the login form, although the
 * browser's session is live, then her app's code. The code she turned the app on with is refused (each code works
 * once); the next one her app shows passes. Returns the app's new tokens.
 */
async function stepUp({ argus, as }, page, challenge, enrolled) {
  const extra = { max_age: challenge.parameters.max_age };
  if (challenge.parameters.acr_values) extra.acr_values = challenge.parameters.acr_values;
  const request = await authorizationRequest(as, SCOPE, extra);
  const callback = callbackOf(page);
  await page.goto(request.url.href);
  assert.equal(await page.locator('form[action="/login"]').count(), 1, 'the login form is shown again');
  await page.fill('input[name="username"]', 'alice');
  await page.fill('input[name="password"]', argus.password);
  await Promise.all([page.waitForLoadState('load'), page.click('form[action="/login"] button[type="submit"]')]);
  const totpForm = 'form[action="/login/totp"]';
  assert.equal(await page.locator(totpForm).count(), 1, 'the second-factor page asks for a code');
  await page.fill(`${totpForm} input[name="code"]`, enrolled.code);
  await Promise.all([page.waitForLoadState('load'), page.click(`${totpForm} button[type="submit"]`)]);
  assert.equal(await page.locator(totpForm).count(), 1, 'a used code is refused');
  assert.equal(await page.locator('p.error').count(), 1, 'with an error');
  await nextStep(enrolled.step);
  await page.fill(`${totpForm} input[name="code"]`, totp(enrolled.secret, stepNow()));
  await Promise.all([page.waitForLoadState('load'), page.click(`${totpForm} button[type="submit"]`)]);
  await consentIfAsked(page);
  const stepped = await exchange(as, request, await callback);
  assert.equal(stepped.claims.acr, MFA, 'the id_token states the second factor');
  assert.deepEqual(stepped.claims.amr, ['pwd', 'otp', 'mfa']);
  assert.equal(payload(stepped.tokens.access_token).acr, MFA);
  return stepped;
}

const TITLE = 'sign in, new-device notice, TOTP, step-up at the gate, account page, app access removed';

test(TITLE, { skip, timeout: 180_000 }, () =>
  onPage(async (page) => {
    const env = main;
    const { argus } = env;
    // 1. alice signs in to the app, which reads her accounts through the gate.
    const signedIn = await signInToApp(env, page);
    const firstAccess = signedIn.tokens.access_token;
    const transfer = await transferOf(env, firstAccess);

    // 2. The account page, in the same browser: the new-device notice of that sign-in, this device marked.
    await page.goto(`${argus.issuerUrl}/account`);
    assert.equal(new URL(page.url()).pathname, '/account', 'the browser session opens the account page directly');
    // The device notice is the one with a "this wasn't me" link; it names the browser.
    const deviceNotice = page.locator('#notices .item.notice', { has: page.locator('a.not-me') });
    assert.equal(await deviceNotice.count(), 1, `one device notice: ${await texts(page, '#notices .item.notice')}`);
    assert.match(await deviceNotice.textContent(), /sign-in to your account, from Chrome on Linux/);
    assert.match(await deviceNotice.getAttribute('class'), /\bunread\b/, 'marked new');
    assert.equal(await page.locator('#devices .item.device .tag', { hasText: 'this device' }).count(), 1);

    // 3. She turns on an authenticator app.
    const enrolled = await enrolTotp(env, page);

    // 4. Moving money with the password-only token: the gate's RFC 9470 challenge asks for the second factor.
    const challenge = stepUpChallenge(await callGate(env, firstAccess, 'POST', '/transfers', transfer));
    assert.equal(challenge.parameters.acr_values, MFA);
    assert.equal(challenge.parameters.max_age, '300');

    // 5. She signs in again (password and code) and the app's new token moves the money.
    const stepped = await stepUp(env, page, challenge, enrolled);
    assert.ok(stepped.claims.auth_time > signedIn.claims.auth_time, 'a new sign-in');
    const steppedAccess = stepped.tokens.access_token;
    const paid = await callGate(env, steppedAccess, 'POST', '/transfers', transfer);
    assert.equal(paid.status, 201, paid.body);
    assert.equal(JSON.parse(paid.body).amount, 1250);

    // 6. The account page lists the app; she removes its access with the page's own button.
    await page.goto(`${argus.issuerUrl}/account`);
    const app = page.locator('#apps .item.app', { hasText: CLIENT_ID });
    assert.equal(await app.count(), 1, 'the demo app is listed under apps');
    assert.match(await app.textContent(), /Argus demo app/);
    const screenshot = join(tmp, 'account.png');
    await page.screenshot({ path: screenshot, fullPage: true });
    assert.ok((await stat(screenshot)).size > 10_000, 'a screenshot of the account page');
    await Promise.all([page.waitForURL(/\/account\?done=app_revoked/), app.locator('button[type="submit"]').click()]);
    assert.equal(await page.textContent('p.notice-ok'), "The app's access was removed.");
    assert.equal(await page.locator('#apps .item.app', { hasText: CLIENT_ID }).count(), 0, 'the app is gone');

    // 7. The app's next call with its unexpired token is refused by the gate; so is the older token; refresh fails.
    assert.ok(payload(steppedAccess).exp * 1000 > Date.now(), 'the access token has not expired');
    const cut = await callGate(env, steppedAccess, 'GET', '/accounts');
    assert.equal(cut.status, 401, cut.body);
    assert.equal(cut.challenges?.[0]?.parameters.error, 'invalid_token');
    const older = await callGate(env, firstAccess, 'GET', '/accounts');
    assert.equal(older.status, 401, older.body);
    for (const token of [stepped.tokens.refresh_token, signedIn.tokens.refresh_token]) {
      const refreshed = await refresh(env, token);
      assert.equal(refreshed.error, 'invalid_grant', JSON.stringify(refreshed));
    }
  }),
);

const TRIGGER = `
[[issuer.triggers]]
name = "factor-step-up"
events = ["Account"]
when = "event.type == 'Account' && event.activity == 'factor_added'"
actions = ["require_step_up"]
`;

const TRIGGER_TITLE = 'a trigger asks for step-up once a factor is added: the demo routes challenge the app';

test(TRIGGER_TITLE, { skip, timeout: 180_000 }, async () => {
  // The demo's own routes; only the trigger is configured.
  const env = await start({ config: TRIGGER });
  try {
    await browser.context.clearCookies();
    await onPage(async (page) => {
      const signedIn = await signInToApp(env, page);
      const access = signedIn.tokens.access_token;
      const transfer = await transferOf(env, access);
      const enrolled = await enrolTotp(env, page);

      // The session's next call is refused: its sign-in predates the new factor. max_age reaches back to it.
      const challenge = stepUpChallenge(await callGate(env, access, 'GET', '/accounts'));
      assert.ok(Number(challenge.parameters.max_age) <= 300, JSON.stringify(challenge.parameters));
      const stepped = await stepUp(env, page, challenge, enrolled);
      const paid = await callGate(env, stepped.tokens.access_token, 'POST', '/transfers', transfer);
      assert.equal(paid.status, 201, paid.body);
      // The token of the older sign-in stays refused.
      const still = await callGate(env, access, 'POST', '/transfers', transfer);
      stepUpChallenge(still);
    });
  } finally {
    await stop(env);
  }
});
