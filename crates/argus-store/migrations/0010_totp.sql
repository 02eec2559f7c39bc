-- Issue 5, second factors: a TOTP credential per user, its single-use recovery codes, and sign-ins whose password was
-- accepted and that wait for the second factor.
--
-- The TOTP secret is the one user secret kept in the clear (hex), as the signing keys are: codes are computed from
-- it, so a hash would not do. It is never logged, and the database file is the owner's alone (0600). Recovery codes
-- are 80 random bits each and stored only as their SHA-256.

CREATE TABLE totp_credentials (
    sub           TEXT    PRIMARY KEY,
    secret        TEXT    NOT NULL, -- hex
    created_at    BIGINT  NOT NULL,
    confirmed_at  BIGINT,           -- NULL until the user's app proved it has the secret
    last_step     BIGINT            -- time step of the last code accepted: that one and earlier ones are refused
);

CREATE TABLE totp_recovery_codes (
    sub        TEXT    NOT NULL,
    code_hash  TEXT    NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (sub, code_hash)
);

CREATE TABLE second_factor_waits (
    handle_hash  TEXT    PRIMARY KEY, -- the pending authorization request's handle hash
    sub          TEXT    NOT NULL,
    failures     INTEGER NOT NULL DEFAULT 0,
    expires_at   BIGINT  NOT NULL
);
