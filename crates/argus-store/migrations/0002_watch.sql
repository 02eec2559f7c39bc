-- Watch tables: the append-only audit log (hash-chained) and alerts.

-- One row per event, in arrival order. seq counts 1, 2, 3 ... without gaps and hash = SHA-256(prev_hash || event_json)
-- (see argus_detect::audit): an edited row breaks its hash, a deleted one leaves a gap and a dangling prev_hash.
-- The UNIQUE prev_hash makes a fork (two rows after the same head) impossible even if two writers raced.
CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY,
    event_id    TEXT    NOT NULL UNIQUE,
    time_ms     INTEGER NOT NULL,
    event_type  TEXT    NOT NULL,
    event_json  TEXT    NOT NULL,
    prev_hash   TEXT    NOT NULL UNIQUE,
    hash        TEXT    NOT NULL
);

-- Append-only: refuse edits and deletions made through SQL by mistake. Someone with the file can drop these
-- triggers; the hash chain is what exposes that.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TABLE alerts (
    id             TEXT    PRIMARY KEY,
    detector       TEXT    NOT NULL,
    attack         TEXT    NOT NULL,
    key_type       TEXT    NOT NULL,
    key            TEXT    NOT NULL,
    severity       TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    first_seen_ms  INTEGER NOT NULL,
    last_seen_ms   INTEGER NOT NULL,
    count          INTEGER NOT NULL,
    feature_json   TEXT    NOT NULL,
    evidence_json  TEXT    NOT NULL
);

-- At most one open alert per (attack, key type, key): repeats merge into it.
CREATE UNIQUE INDEX alerts_one_open_per_key ON alerts (attack, key_type, key) WHERE status = 'open';
CREATE INDEX alerts_by_last_seen ON alerts (last_seen_ms DESC, id DESC);
