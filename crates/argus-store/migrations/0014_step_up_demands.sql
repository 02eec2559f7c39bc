-- Issue 5, configurable triggers: "this session must sign in again before its next call". Gates hear a demand on
-- the control channel; a gate that starts later loads the ones in force from here. Times in milliseconds.

CREATE TABLE step_up_demands (
    id          TEXT    PRIMARY KEY,
    sid         TEXT    NOT NULL,
    not_before  BIGINT  NOT NULL,  -- sign-ins before this no longer count
    expires_at  BIGINT  NOT NULL   -- every token the session can mint with an older auth_time has expired by then
);
CREATE INDEX step_up_demands_expires ON step_up_demands (expires_at);
