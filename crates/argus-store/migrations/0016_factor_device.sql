-- Issue 5, "this wasn't me" and second factors: the device each TOTP credential and passkey was enrolled from, so
-- that confirming a sign-in as not yours also removes the factors the intruder added on that device (else the real
-- user, after the password reset, is asked for a factor only the intruder has). NULL for factors enrolled before
-- this column, or from a session on no known device: those stay.

ALTER TABLE totp_credentials ADD COLUMN device_id TEXT;
ALTER TABLE passkeys ADD COLUMN device_id TEXT;
