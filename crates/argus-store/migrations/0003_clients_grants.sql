-- Issue 3: confidential and private_key_jwt clients with per-client grants, lifetimes, PAR and DPoP requirements;
-- pushed authorization requests (RFC 9126); DPoP binding of codes (dpop_jkt) and of public clients' refresh families.
--
-- Columns are added with defaults that keep every existing client what it was: an enabled public client of the
-- code flow with refresh tokens.

ALTER TABLE clients ADD COLUMN token_endpoint_auth_method TEXT NOT NULL DEFAULT 'none';
ALTER TABLE clients ADD COLUMN client_secret_hash TEXT; -- SHA-256 of the secret, base64url; never the secret
ALTER TABLE clients ADD COLUMN jwks TEXT; -- JSON JWK Set of the client's public keys (private_key_jwt)
ALTER TABLE clients ADD COLUMN grant_types TEXT NOT NULL DEFAULT 'authorization_code refresh_token'; -- space-separated
ALTER TABLE clients ADD COLUMN access_token_ttl_secs BIGINT;
ALTER TABLE clients ADD COLUMN refresh_token_ttl_secs BIGINT;
ALTER TABLE clients ADD COLUMN require_par INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN dpop_bound_access_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;

ALTER TABLE pending_authorizations ADD COLUMN dpop_jkt TEXT;
ALTER TABLE authorization_codes ADD COLUMN dpop_jkt TEXT;
ALTER TABLE refresh_families ADD COLUMN jkt TEXT; -- DPoP key thumbprint every refresh must prove (public clients)

CREATE TABLE pushed_requests (
    request_uri_hash  TEXT    PRIMARY KEY, -- SHA-256 of the random part of the request_uri
    client_id         TEXT    NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    redirect_uri      TEXT    NOT NULL,
    scope             TEXT    NOT NULL,
    state             TEXT,
    nonce             TEXT,
    code_challenge    TEXT    NOT NULL,
    prompt            TEXT    NOT NULL,
    dpop_jkt          TEXT,
    created_at        BIGINT  NOT NULL,
    expires_at        BIGINT  NOT NULL
);
CREATE INDEX pushed_requests_expires ON pushed_requests (expires_at);
