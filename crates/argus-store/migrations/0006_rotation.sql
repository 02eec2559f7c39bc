-- Issue 3, a faster token endpoint: refresh-token rotation in one statement.
--
-- A rotation consumes the presented token and stores its successor, atomically. As two statements in a transaction
-- that is four round trips to SQLite (BEGIN, UPDATE, INSERT, COMMIT), each a hand-off to the connection's thread.
-- Instead the successor names its predecessor (`rotated_from`), is inserted only while the predecessor is
-- unconsumed and its family unrevoked (`INSERT ... SELECT ... WHERE`), and this trigger consumes the predecessor
-- in the same statement: one statement is one implicit transaction, so both happen or neither. (PostgreSQL does the
-- same with a data-modifying CTE.)

ALTER TABLE refresh_tokens ADD COLUMN rotated_from TEXT; -- token_hash of the token this one replaced

CREATE TRIGGER refresh_tokens_consume_predecessor AFTER INSERT ON refresh_tokens
WHEN NEW.rotated_from IS NOT NULL
BEGIN
    UPDATE refresh_tokens SET consumed_at = NEW.created_at WHERE token_hash = NEW.rotated_from;
END;
