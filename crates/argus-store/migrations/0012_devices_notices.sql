-- Issue 5, devices and notices: what a device and a session were seen as (IP, user agent, a friendly label), which
-- users signed in on which device (a user's first sign-in on a device is what makes a new-device notice), the
-- notices users are told, and the outbox that delivers them (webhook, SMTP) at least once, with retries.
--
-- Nothing secret here: IPs, user agents (cut to 256 bytes), labels, ids and times. Notice bodies hold what, where
-- and when, never a cookie, token or password.

ALTER TABLE devices ADD COLUMN last_ip TEXT;
ALTER TABLE devices ADD COLUMN user_agent TEXT;
ALTER TABLE devices ADD COLUMN label TEXT;      -- "Firefox on Linux"
ALTER TABLE devices ADD COLUMN ua_family TEXT;  -- browser and OS family as recorded: a known cookie from another is suspicious

ALTER TABLE sessions ADD COLUMN ip TEXT;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
ALTER TABLE sessions ADD COLUMN created_at BIGINT;
ALTER TABLE sessions ADD COLUMN last_used_at BIGINT;

-- An optional address for notices by e-mail.
ALTER TABLE users ADD COLUMN email TEXT;

CREATE TABLE user_devices (
    sub            TEXT    NOT NULL REFERENCES users (sub) ON DELETE CASCADE,
    device_id      TEXT    NOT NULL REFERENCES devices (device_id) ON DELETE CASCADE,
    first_seen_at  BIGINT  NOT NULL,
    last_seen_at   BIGINT  NOT NULL,
    PRIMARY KEY (sub, device_id)
);
CREATE INDEX user_devices_device ON user_devices (device_id);

CREATE TABLE notices (
    id          TEXT    PRIMARY KEY,  -- UUIDv7
    sub         TEXT    NOT NULL REFERENCES users (sub) ON DELETE CASCADE,
    kind        TEXT    NOT NULL,     -- argus_model::Activity, snake_case
    created_at  BIGINT  NOT NULL,
    read_at     BIGINT,
    device_id   TEXT,
    body        TEXT    NOT NULL      -- JSON: what, where, when
);
CREATE INDEX notices_sub ON notices (sub, created_at);
CREATE INDEX notices_created ON notices (created_at);

CREATE TABLE outbox (
    id               TEXT    PRIMARY KEY,  -- UUIDv7; the delivery's stable id (webhook-id, Message-ID)
    notice_id        TEXT,                 -- the notice delivered, if it is one
    channel          TEXT    NOT NULL,     -- webhook | smtp | admin_webhook
    target           TEXT    NOT NULL,     -- URL or e-mail address
    payload          TEXT    NOT NULL,     -- JSON sent (webhook) or rendered from (smtp)
    created_at       BIGINT  NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT  NOT NULL,
    delivered_at     BIGINT,
    failed_at        BIGINT,               -- gave up after the last attempt
    last_error       TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_created ON outbox (created_at);
