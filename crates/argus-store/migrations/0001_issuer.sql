-- Issuer tables: signing keys, users, clients, sessions, authorization requests, codes, refresh tokens, revocations.
--
-- Portable SQL (SQLite and PostgreSQL): times are BIGINT unix milliseconds, booleans are INTEGER 0/1, binary data is
-- base64url TEXT. Every secret column holds a SHA-256 (base64url), never the secret itself.

CREATE TABLE signing_keys (
    kid         TEXT    PRIMARY KEY,
    alg         TEXT    NOT NULL,
    pkcs8       TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);

CREATE TABLE users (
    sub            TEXT    PRIMARY KEY,
    username       TEXT    NOT NULL UNIQUE,
    password_hash  TEXT    NOT NULL,
    disabled       INTEGER NOT NULL DEFAULT 0,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL
);

CREATE TABLE clients (
    client_id       TEXT    PRIMARY KEY,
    name            TEXT    NOT NULL,
    redirect_uris   TEXT    NOT NULL, -- JSON array of strings
    allowed_scopes  TEXT    NOT NULL, -- space-separated
    is_public       INTEGER NOT NULL,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);

CREATE TABLE pending_authorizations (
    handle_hash     TEXT    PRIMARY KEY,
    browser_hash    TEXT    NOT NULL,
    csrf_hash       TEXT    NOT NULL,
    client_id       TEXT    NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    redirect_uri    TEXT    NOT NULL,
    scope           TEXT    NOT NULL,
    state           TEXT,
    nonce           TEXT,
    code_challenge  TEXT    NOT NULL,
    prompt          TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    expires_at      BIGINT  NOT NULL
);
CREATE INDEX pending_authorizations_expires ON pending_authorizations (expires_at);

CREATE TABLE sessions (
    sid          TEXT    PRIMARY KEY,
    cookie_hash  TEXT    NOT NULL UNIQUE,
    sub          TEXT    NOT NULL REFERENCES users (sub) ON DELETE CASCADE,
    auth_time    BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE consents (
    sub         TEXT    NOT NULL REFERENCES users (sub) ON DELETE CASCADE,
    client_id   TEXT    NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    scope       TEXT    NOT NULL,
    granted_at  BIGINT  NOT NULL,
    PRIMARY KEY (sub, client_id)
);

CREATE TABLE authorization_codes (
    code_hash          TEXT    PRIMARY KEY,
    client_id          TEXT    NOT NULL,
    redirect_uri       TEXT    NOT NULL,
    code_challenge     TEXT    NOT NULL,
    scope              TEXT    NOT NULL,
    nonce              TEXT,
    sub                TEXT    NOT NULL,
    sid                TEXT    NOT NULL,
    auth_time          BIGINT  NOT NULL,
    expires_at         BIGINT  NOT NULL,
    used_at            BIGINT,
    family_id          TEXT,
    access_jti         TEXT,
    access_expires_at  BIGINT
);
CREATE INDEX authorization_codes_expires ON authorization_codes (expires_at);

CREATE TABLE refresh_families (
    family_id   TEXT    PRIMARY KEY,
    client_id   TEXT    NOT NULL,
    sub         TEXT    NOT NULL,
    sid         TEXT,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    revoked_at  BIGINT
);

CREATE TABLE refresh_tokens (
    token_hash         TEXT    PRIMARY KEY,
    family_id          TEXT    NOT NULL REFERENCES refresh_families (family_id) ON DELETE CASCADE,
    client_id          TEXT    NOT NULL,
    sub                TEXT    NOT NULL,
    sid                TEXT,
    scope              TEXT    NOT NULL,
    auth_time          BIGINT,
    created_at         BIGINT  NOT NULL,
    expires_at         BIGINT  NOT NULL,
    consumed_at        BIGINT,
    access_jti         TEXT    NOT NULL,
    access_expires_at  BIGINT  NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

CREATE TABLE revocations (
    id          TEXT    PRIMARY KEY,
    scope       TEXT    NOT NULL, -- JSON of argus_model::RevocationScope
    revoked_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL
);
CREATE INDEX revocations_expires ON revocations (expires_at);
