-- Issue 5, sign-in that resists attack: the counters of progressive sign-in throttling (argus_oauth::throttle), one
-- row per key: `acct:<SHA-256 of the user name>@<address>` or `ip:<address>` (IPv6 as its /64). User names are kept
-- only as hashes. A row is deleted once its failures are forgotten (`forget_at`), so the table stays as small as
-- the failures of the last memory window.

CREATE TABLE login_throttle (
    key           TEXT    PRIMARY KEY,
    failures      INTEGER NOT NULL,
    locked_until  BIGINT,           -- NULL: not locked
    forget_at     BIGINT  NOT NULL
);

CREATE INDEX login_throttle_forget_at ON login_throttle (forget_at);
