// Passkeys as a second factor, end to end in headless Chromium: the real `argus up --demo`, the issuer's real pages
// and script, Chromium's own WebAuthn implementation with a virtual authenticator (CDP), and the demo app's sign-in
// done by npm oauth4webapi.
//
// alice signs in with her password, registers a passkey at /account/passkeys, signs out (cookies cleared), signs in
// to the app again: password, then passkey. The app's tokens state acr urn:argus:acr:mfa and amr
// ["pwd", "pop", "mfa"]. Then the refusals: an assertion replayed from the earlier sign-in, and a credential the
// server never registered for alice (offered by stripping allowCredentials), each answered "not accepted" with no
// code for the app.

import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';

import { authorizationRequest, callbackOf, discover, exchange, submitPassword } from './lib/app.mjs';
import { startArgus } from './lib/argus.mjs';
import { addVirtualAuthenticator, chromiumMissing, credentials, launchChromium } from './lib/chromium.mjs';

const skip = chromiumMissing();
const MFA = 'urn:argus:acr:mfa';
const REFUSED = 'That passkey was not accepted.';

let argus;
let browser;
let as;
/** alice's credential as her authenticator holds it (private key included) after the first test. */
let aliceCredential;

before(async () => {
  if (skip) return;
  argus = await startArgus();
  browser = await launchChromium();
  as = await discover(argus.issuerUrl);
});

after(async () => {
  // ARGUS_OUTPUT=1 shows what the server logged (why an assertion was refused, say).
  if (process.env.ARGUS_OUTPUT && argus) console.log(argus.output());
  await browser?.close();
  await argus?.stop();
});

/** Allow on the consent page if it is shown. */
async function consentIfAsked(page) {
  const allow = page.locator('button[name="decision"][value="allow"]');
  if (await allow.count()) await allow.click();
}

/** The body of the JWT's payload. */
function payload(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
}

test('a passkey registered on the account page is the second factor of the next sign-in', { skip }, async (t) => {
  const page = await browser.context.newPage();
  const authenticator = await addVirtualAuthenticator(page);
  try {
    // 1. Sign in with the password alone (alice has no second factor yet), so the browser has a session.
    const first = await authorizationRequest(as);
    const firstCallback = callbackOf(page);
    await submitPassword(page, first.url, 'alice', argus.password);
    await consentIfAsked(page);
    const { claims: pwdClaims } = await exchange(as, first, await firstCallback);
    assert.equal(pwdClaims.acr, 'urn:argus:acr:pwd');

    // 2. Register a passkey.
    await page.goto(`${argus.issuerUrl}/account/passkeys`);
    assert.match(await page.content(), /You have no passkeys yet/);
    await page.fill('#passkey-name', 'Test laptop');
    await Promise.all([page.waitForURL(`${argus.issuerUrl}/account/passkeys`), page.click('#passkey-add')]);
    await page.waitForSelector('li.passkey');
    assert.equal(await page.textContent('li.passkey .passkey-name'), 'Test laptop');
    assert.match(await page.textContent('li.passkey'), /last used never/);
    const [held] = await credentials(authenticator);
    assert.equal(held.rpId, 'localhost', 'the relying party is the issuer host');
    const countAfterRegistration = held.signCount;

    // 3. Sign out (the session cookie goes), and sign in to the app again: password, then the passkey.
    await browser.context.clearCookies();
    const second = await authorizationRequest(as);
    await submitPassword(page, second.url, 'alice', argus.password);
    assert.equal(await page.locator('#passkey-use').count(), 1, 'the second-factor page offers the passkey');
    assert.equal(await page.locator('form[action="/login/totp"]').count(), 0, 'and no TOTP form: alice has none');
    let assertion;
    page.on('request', (r) => {
      if (r.url().endsWith('/login/passkey/finish')) assertion = new URLSearchParams(r.postData()).get('credential');
    });
    const secondCallback = callbackOf(page);
    await page.click('#passkey-use');
    const { tokens, claims } = await exchange(as, second, await secondCallback);
    assert.equal(claims.acr, MFA, 'the id_token states the mfa level');
    assert.deepEqual(claims.amr, ['pwd', 'pop', 'mfa'], 'and the passkey methods (RFC 8176)');
    const access = payload(tokens.access_token);
    assert.equal(access.acr, MFA);
    assert.deepEqual(access.amr, ['pwd', 'pop', 'mfa']);
    const [used] = await credentials(authenticator);
    assert.ok(used.signCount > countAfterRegistration, 'the authenticator counted the use');
    await page.goto(`${argus.issuerUrl}/account/passkeys`);
    assert.doesNotMatch(await page.textContent('li.passkey'), /last used never/, 'the last use is recorded');

    await t.test('an assertion replayed from the earlier sign-in is refused', async () => {
      assert.ok(assertion, 'the earlier assertion was seen');
      await browser.context.clearCookies();
      const third = await authorizationRequest(as);
      let reachedApp = false;
      callbackOf(page).then(() => (reachedApp = true));
      await submitPassword(page, third.url, 'alice', argus.password);
      // A new challenge is issued for this sign-in; the form carries the old assertion instead of a new one.
      await page.evaluate(async (old) => {
        const form = document.getElementById('passkey-sign-in');
        const body = new URLSearchParams(new FormData(form));
        const started = await fetch('/login/passkey/start', { method: 'POST', body });
        if (!started.ok) throw new Error(`start: ${started.status}`);
        form.querySelector('input[name="credential"]').value = old;
        form.submit();
      }, assertion);
      await page.waitForSelector('p.error');
      assert.equal(await page.textContent('p.error'), REFUSED);
      assert.equal(reachedApp, false, 'no code for the app');
    });

    await t.test('a cloned authenticator, its counter behind, is refused', async () => {
      const [original] = await credentials(authenticator);
      const clonePage = await browser.context.newPage();
      try {
        const clone = await addVirtualAuthenticator(clonePage);
        // The same key, copied before its latest uses: its counter is behind the one the server saw last.
        await clone.cdp.send('WebAuthn.addCredential', {
          authenticatorId: clone.authenticatorId,
          credential: { ...original, signCount: 0 },
        });
        await browser.context.clearCookies();
        const request = await authorizationRequest(as);
        let reachedApp = false;
        callbackOf(clonePage).then(() => (reachedApp = true));
        await submitPassword(clonePage, request.url, 'alice', argus.password);
        await Promise.all([clonePage.waitForLoadState('load'), clonePage.click('#passkey-use')]);
        await clonePage.waitForSelector('p.error');
        assert.equal(await clonePage.textContent('p.error'), REFUSED);
        assert.equal(reachedApp, false, 'no code for the app');
      } finally {
        await clonePage.close();
      }
    });
    [aliceCredential] = await credentials(authenticator);
  } finally {
    await page.close();
  }
});

test('a passkey not registered to the user is refused, even for the right challenge', { skip }, async () => {
  const page = await browser.context.newPage();
  const authenticator = await addVirtualAuthenticator(page);
  try {
    // A key pair the server never saw, as a resident credential for this relying party.
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await authenticator.cdp.send('WebAuthn.addCredential', {
      authenticatorId: authenticator.authenticatorId,
      credential: {
        credentialId: randomBytes(32).toString('base64'),
        isResidentCredential: true,
        rpId: 'localhost',
        privateKey: privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64'),
        userHandle: randomBytes(16).toString('base64'),
        signCount: 1,
      },
    });
    await browser.context.clearCookies();
    const request = await authorizationRequest(as);
    let reachedApp = false;
    callbackOf(page).then(() => (reachedApp = true));
    await submitPassword(page, request.url, 'alice', argus.password);
    // Without the server's list of allowed credentials, Chromium signs the challenge with the key it has.
    await page.route('**/login/passkey/start', async (route) => {
      const response = await route.fetch();
      const options = await response.json();
      delete options.publicKey.allowCredentials;
      await route.fulfill({ response, json: options });
    });
    await Promise.all([page.waitForLoadState('load'), page.click('#passkey-use')]);
    await page.waitForSelector('p.error');
    assert.equal(await page.textContent('p.error'), REFUSED);
    assert.equal(reachedApp, false, 'no code for the app');
  } finally {
    await page.close();
  }
});

test('a removed passkey is no second factor any more', { skip }, async () => {
  const page = await browser.context.newPage();
  try {
    await browser.context.clearCookies();
    // While alice has a passkey, signing in takes it: her credential, moved into this page's authenticator (its
    // counter ahead of every use so far).
    const authenticator = await addVirtualAuthenticator(page);
    await authenticator.cdp.send('WebAuthn.addCredential', {
      authenticatorId: authenticator.authenticatorId,
      credential: { ...aliceCredential, signCount: aliceCredential.signCount + 100 },
    });
    const request = await authorizationRequest(as);
    const callback = callbackOf(page);
    await submitPassword(page, request.url, 'alice', argus.password);
    await page.click('#passkey-use');
    await exchange(as, request, await callback);
    await page.goto(`${argus.issuerUrl}/account/passkeys`);
    await Promise.all([page.waitForLoadState('load'), page.click('li.passkey button[type="submit"]')]);
    assert.match(await page.content(), /You have no passkeys yet/);

    await browser.context.clearCookies();
    const after = await authorizationRequest(as);
    const afterCallback = callbackOf(page);
    await submitPassword(page, after.url, 'alice', argus.password);
    const { claims } = await exchange(as, after, await afterCallback);
    assert.equal(claims.acr, 'urn:argus:acr:pwd', 'the password alone signs in again');
    assert.deepEqual(claims.amr, ['pwd']);
  } finally {
    await page.close();
  }
});
