// The browser part of the code flow: fetch with a cookie jar, and the issuer's HTML login and consent forms as its
// contract writes them. Plain Node (no dependency), so the benchmark's token minting can share it.

import assert from 'node:assert/strict';

/** Cookies of one browser for one origin (all we talk to with cookies is the issuer). */
export class CookieJar {
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
export function unescapeHtml(text) {
  return text.replace(/&(amp|quot|#x27|lt|gt);/g, (_, entity) => HTML_ENTITIES[entity]);
}

/** The body of `<form method="post" action="ACTION">` in `html`, or null when the page has no such form. */
export function formBody(html, action) {
  const start = html.indexOf(`<form method="post" action="${action}">`);
  if (start < 0) return null;
  const end = html.indexOf('</form>', start);
  return html.slice(start, end < 0 ? undefined : end);
}

/** The hidden inputs of a form, written exactly `<input type="hidden" name="NAME" value="VALUE">`. */
export function hiddenInputs(form) {
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
export async function navigate(jar, url, redirectUri, init = { method: 'GET' }) {
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
 * Open `authorizationUrl` in the browser `jar` and go through the login and consent forms as `username` until the
 * issuer redirects to `redirectUri`. Returns the callback URL and the kinds of page the browser went through
 * (none when the browser's session and an earlier consent cover the request).
 */
export async function authorizeInBrowser(jar, authorizationUrl, redirectUri, { username, password }) {
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
  return { callback: page.callback, pages };
}
