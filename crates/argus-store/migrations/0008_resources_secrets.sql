-- Issue 3 polish.
--
-- Resource indicators (RFC 8707): the resources an authorization request named travel with it to the code and the
-- refresh family, whose tokens may each be for one of them. Space-separated (a resource is an absolute URI without
-- whitespace); NULL when the request named none, which keeps the default audience, as every earlier grant had.
ALTER TABLE pending_authorizations ADD COLUMN resource TEXT;
ALTER TABLE pushed_requests ADD COLUMN resource TEXT;
ALTER TABLE authorization_codes ADD COLUMN resource TEXT;
ALTER TABLE refresh_families ADD COLUMN resource TEXT;

-- Secrets every process over this store must share, created once by whichever process needs one first: the keys
-- DPoP server nonces are derived from, so a nonce one process (or the one before a restart) handed out is good at the
-- next.
CREATE TABLE server_secrets (
    name        TEXT    PRIMARY KEY,
    value       TEXT    NOT NULL, -- hex
    created_at  BIGINT  NOT NULL
);
