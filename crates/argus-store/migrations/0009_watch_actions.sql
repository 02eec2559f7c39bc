-- Issue 6, watch acts: the responses watch took to alerts, and the notifications they left for users.

-- One row per action: what a response rule did (or, observe-only, would have done) about an alert. An action
-- "stands" while it is in force or once undone (argus_detect::ActionRecord::stands): a rule does not act again on
-- the same alert then. until_ms is the end of a block; NULL: no end (revocations, notifications, records).
CREATE TABLE watch_actions (
    id            TEXT    PRIMARY KEY,
    alert_id      TEXT    NOT NULL,
    rule          TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    target_json   TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    time_ms       INTEGER NOT NULL,
    until_ms      INTEGER,
    detail        TEXT    NOT NULL,
    undone_at_ms  INTEGER
);

CREATE INDEX watch_actions_by_alert_rule ON watch_actions (alert_id, rule);

-- A notification for a user; delivered by the issuer's account pages once they exist (issue 5).
CREATE TABLE watch_notifications (
    id         TEXT    PRIMARY KEY,
    sub        TEXT    NOT NULL,
    alert_id   TEXT    NOT NULL,
    action_id  TEXT    NOT NULL,
    time_ms    INTEGER NOT NULL,
    message    TEXT    NOT NULL
);

CREATE INDEX watch_notifications_by_sub ON watch_notifications (sub, id DESC);
