-- Issue 5, the account page: when each grant was last used, the "change your password first" mark a "this wasn't
-- me" sets, and the one use of each "this wasn't me" link.
--
-- Nothing secret: link ids are notice ids; the links themselves are HMACs the issuer recomputes.

-- The last token issued or refreshed for the user and app, recorded at most once a minute per issuer process.
ALTER TABLE consents ADD COLUMN last_used_at BIGINT;

-- Set by "this wasn't me": the next sign-in changes the password before anything else.
ALTER TABLE users ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0;

CREATE TABLE used_links (
    id          TEXT    PRIMARY KEY,  -- the notice id the link was made for
    used_at     BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL      -- the link's own end: after it, the row is forgotten
);
CREATE INDEX used_links_expires ON used_links (expires_at);
