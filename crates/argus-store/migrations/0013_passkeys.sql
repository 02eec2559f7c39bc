-- Issue 5, second factors: WebAuthn passkeys, the state of a registration or sign-in ceremony between its start and
-- finish requests, and which sign-ins a passkey completed (for the `amr` of their tokens).
--
-- A passkey holds only a public key (and its signature counter): nothing here is a secret. The ceremony state holds
-- the challenge; it lives a few minutes, works once, and is found by the hash of what it is bound to (the session
-- cookie for a registration, the pending request's handle for a sign-in).

CREATE TABLE passkeys (
    id             TEXT    PRIMARY KEY,           -- ours, for the remove button
    sub            TEXT    NOT NULL REFERENCES users (sub) ON DELETE CASCADE,
    credential_id  TEXT    NOT NULL UNIQUE,       -- base64url; one credential belongs to one account
    passkey        TEXT    NOT NULL,              -- webauthn-rs `Passkey` as JSON: public key, counter, backup state
    name           TEXT    NOT NULL,
    created_at     BIGINT  NOT NULL,
    last_used_at   BIGINT
);

CREATE INDEX passkeys_by_sub ON passkeys (sub);

CREATE TABLE passkey_ceremonies (
    key_hash    TEXT    PRIMARY KEY,  -- hash of what the ceremony is bound to, under the ceremony's own label
    sub         TEXT    NOT NULL REFERENCES users (sub) ON DELETE CASCADE,
    state       TEXT    NOT NULL,     -- webauthn-rs registration or authentication state as JSON
    expires_at  BIGINT  NOT NULL
);

CREATE TABLE passkey_sign_ins (
    sid        TEXT    NOT NULL,      -- the session the sign-in made or renewed
    auth_time  BIGINT  NOT NULL,      -- its `auth_time`, as codes and refresh families record it
    expires_at BIGINT  NOT NULL,
    PRIMARY KEY (sid, auth_time)
);
