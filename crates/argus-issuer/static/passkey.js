// Passkeys on the issuer's pages: registration (/account/passkeys) and the second step of a sign-in. The server
// sends the WebAuthn options as JSON with binary fields in base64url; the browser's answer goes back the same way,
// in a hidden field of an ordinary form, so the server answers with an ordinary page.
'use strict';

function fromB64url(s) {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0)).buffer;
}

function toB64url(buf) {
  const bytes = new Uint8Array(buf);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function withIds(list) {
  return (list || []).map((c) => ({ ...c, id: fromB64url(c.id) }));
}

async function options(url, form) {
  const body = new URLSearchParams();
  for (const name of ['csrf', 'request']) {
    const input = form.querySelector(`input[name="${name}"]`);
    if (input) body.set(name, input.value);
  }
  const response = await fetch(url, { method: 'POST', body, credentials: 'same-origin' });
  const json = await response.json();
  if (!response.ok) throw new Error(json.error || 'The server refused.');
  return json.publicKey;
}

function status(text) {
  const el = document.getElementById('passkey-status');
  if (el) el.textContent = text;
}

async function register(form) {
  const pk = await options('/account/passkeys/register/start', form);
  pk.challenge = fromB64url(pk.challenge);
  pk.user = { ...pk.user, id: fromB64url(pk.user.id) };
  pk.excludeCredentials = withIds(pk.excludeCredentials);
  const cred = await navigator.credentials.create({ publicKey: pk });
  const answer = {
    id: cred.id,
    rawId: toB64url(cred.rawId),
    type: cred.type,
    extensions: cred.getClientExtensionResults(),
    response: {
      attestationObject: toB64url(cred.response.attestationObject),
      clientDataJSON: toB64url(cred.response.clientDataJSON),
      transports: cred.response.getTransports ? cred.response.getTransports() : undefined,
    },
  };
  form.querySelector('input[name="credential"]').value = JSON.stringify(answer);
  form.submit();
}

async function signIn(form) {
  const pk = await options('/login/passkey/start', form);
  pk.challenge = fromB64url(pk.challenge);
  pk.allowCredentials = withIds(pk.allowCredentials);
  const cred = await navigator.credentials.get({ publicKey: pk });
  const answer = {
    id: cred.id,
    rawId: toB64url(cred.rawId),
    type: cred.type,
    extensions: cred.getClientExtensionResults(),
    response: {
      authenticatorData: toB64url(cred.response.authenticatorData),
      clientDataJSON: toB64url(cred.response.clientDataJSON),
      signature: toB64url(cred.response.signature),
      userHandle: cred.response.userHandle ? toB64url(cred.response.userHandle) : null,
    },
  };
  form.querySelector('input[name="credential"]').value = JSON.stringify(answer);
  form.submit();
}

function wire(buttonId, formId, action) {
  const button = document.getElementById(buttonId);
  const form = document.getElementById(formId);
  if (!button || !form) return;
  if (!window.PublicKeyCredential) {
    status('This browser does not support passkeys.');
    button.disabled = true;
    return;
  }
  button.addEventListener('click', () => {
    button.disabled = true;
    status('Waiting for your passkey…');
    action(form).catch((err) => {
      status(`No passkey was used: ${err.message}`);
      button.disabled = false;
    });
  });
}

wire('passkey-add', 'passkey-register', register);
wire('passkey-use', 'passkey-sign-in', signIn);
