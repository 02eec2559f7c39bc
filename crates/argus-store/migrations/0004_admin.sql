-- Issue 3, admin and revocation by scope: devices (the long-lived `argus_device` browser cookie, stored hashed),
-- recorded on sessions and refresh families so "revoke this device" finds what was signed in on it; indexes for
-- the revocation scopes (session, user, app, grant, device).

CREATE TABLE devices (
    device_id     TEXT    PRIMARY KEY,
    cookie_hash   TEXT    NOT NULL UNIQUE, -- SHA-256 of the cookie value, base64url; never the cookie
    created_at    BIGINT  NOT NULL,
    last_seen_at  BIGINT  NOT NULL,
    expires_at    BIGINT  NOT NULL
);
CREATE INDEX devices_expires ON devices (expires_at);

ALTER TABLE sessions ADD COLUMN device_id TEXT;
ALTER TABLE refresh_families ADD COLUMN device_id TEXT;

CREATE INDEX sessions_sub ON sessions (sub);
CREATE INDEX sessions_device ON sessions (device_id);
CREATE INDEX refresh_families_sid ON refresh_families (sid);
CREATE INDEX refresh_families_sub_client ON refresh_families (sub, client_id);
CREATE INDEX refresh_families_client ON refresh_families (client_id);
CREATE INDEX refresh_families_device ON refresh_families (device_id);

-- A family started in a session inherits the session's device, whoever writes the family: the sign-in session
-- ends long before the family does (12 hours against 30 days by default), so the link must be copied, not joined.
CREATE TRIGGER refresh_families_inherit_device AFTER INSERT ON refresh_families
WHEN NEW.sid IS NOT NULL AND NEW.device_id IS NULL
BEGIN
    UPDATE refresh_families SET device_id = (SELECT device_id FROM sessions WHERE sid = NEW.sid)
    WHERE family_id = NEW.family_id;
END;
