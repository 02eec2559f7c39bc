-- Issue 4, step-up (OIDC max_age / acr_values, RFC 9470): the level each sign-in reached (`acr`), carried from the
-- session to the code, the refresh family and every token they issue; and the requirement of a request waiting for
-- the browser (`max_age`, `acr_values`), so it still holds after the login form.
--
-- Every sign-in so far was a password sign-in: existing sessions and codes get its acr value (the constant
-- `ACR_PASSWORD` of argus-oauth). Existing refresh families keep NULL: their acr was never recorded, and their tokens
-- say nothing rather than guess.

ALTER TABLE sessions ADD COLUMN acr TEXT NOT NULL DEFAULT 'urn:argus:acr:pwd';
ALTER TABLE authorization_codes ADD COLUMN acr TEXT NOT NULL DEFAULT 'urn:argus:acr:pwd';
ALTER TABLE refresh_families ADD COLUMN acr TEXT;

ALTER TABLE pending_authorizations ADD COLUMN max_age BIGINT; -- seconds
ALTER TABLE pending_authorizations ADD COLUMN acr_values TEXT; -- space-separated, the client's order
ALTER TABLE pushed_requests ADD COLUMN max_age BIGINT;
ALTER TABLE pushed_requests ADD COLUMN acr_values TEXT;
