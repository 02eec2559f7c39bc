//! Deleting a user and everything that is theirs, in one transaction.
//!
//! Every table with a `sub` column (migrations 0001-0015) is in [`BY_SUB`]; a test compares that list with the
//! schema, so a new table that names users fails it until it is handled here. Rows that belong to the user without
//! naming the `sub` go first ([`BY_LINK`]), while the rows they are found through still exist.
//!
//! Kept on purpose: `audit_log` (append-only and hash-chained: the record of what happened, this deletion
//! included), watch's `alerts` and `watch_actions` (security history, keyed by whatever the detector saw),
//! `revocations` (the gates must refuse the user's tokens until they expire) and `login_throttle` (keyed by the
//! hash of a typed user name and an address: it records the guesser, not the account, and forgets on its own).

use argus_oauth::StorageError;
use argus_oauth::admin::UserDeletion;
use sqlx::{Sqlite, Transaction};

use crate::issuer::{db, text};

/// The sessions of the user, and the sign-ins recorded on their codes and refresh families (whose session may
/// have been purged already).
macro_rules! user_sids {
    () => {
        "(SELECT sid FROM sessions WHERE sub = $1 \
          UNION SELECT sid FROM refresh_families WHERE sub = $1 AND sid IS NOT NULL \
          UNION SELECT sid FROM authorization_codes WHERE sub = $1)"
    };
}

/// Rows that are the user's by a link to another of their rows: a session id, a notice id.
pub(super) const BY_LINK: &[(&str, &str)] = &[
    ("passkey_sign_ins", concat!("DELETE FROM passkey_sign_ins WHERE sid IN ", user_sids!())),
    ("step_up_demands", concat!("DELETE FROM step_up_demands WHERE sid IN ", user_sids!())),
    ("outbox", "DELETE FROM outbox WHERE notice_id IN (SELECT id FROM notices WHERE sub = $1)"),
    ("used_links", "DELETE FROM used_links WHERE id IN (SELECT id FROM notices WHERE sub = $1)"),
];

/// Every table with a `sub` column, children before parents so each count is the table's own; `users` last.
pub(super) const BY_SUB: &[(&str, &str)] = &[
    ("refresh_tokens", "DELETE FROM refresh_tokens WHERE sub = $1"),
    ("refresh_families", "DELETE FROM refresh_families WHERE sub = $1"),
    ("authorization_codes", "DELETE FROM authorization_codes WHERE sub = $1"),
    ("consents", "DELETE FROM consents WHERE sub = $1"),
    ("second_factor_waits", "DELETE FROM second_factor_waits WHERE sub = $1"),
    ("totp_recovery_codes", "DELETE FROM totp_recovery_codes WHERE sub = $1"),
    ("totp_credentials", "DELETE FROM totp_credentials WHERE sub = $1"),
    ("passkey_ceremonies", "DELETE FROM passkey_ceremonies WHERE sub = $1"),
    ("passkeys", "DELETE FROM passkeys WHERE sub = $1"),
    ("watch_notifications", "DELETE FROM watch_notifications WHERE sub = $1"),
    ("user_devices", "DELETE FROM user_devices WHERE sub = $1"),
    ("notices", "DELETE FROM notices WHERE sub = $1"),
    ("sessions", "DELETE FROM sessions WHERE sub = $1"),
    ("users", "DELETE FROM users WHERE sub = $1"),
];

/// The devices the user signed in on, by any record of it.
const USER_DEVICES: &str = "SELECT device_id FROM user_devices WHERE sub = $1 \
     UNION SELECT device_id FROM sessions WHERE sub = $1 AND device_id IS NOT NULL \
     UNION SELECT device_id FROM refresh_families WHERE sub = $1 AND device_id IS NOT NULL";

/// A device goes with the user only if no one else's row names it: a shared browser stays known to its other users.
const DELETE_DEVICE_IF_UNSHARED: &str = "DELETE FROM devices WHERE device_id = $1 \
     AND NOT EXISTS (SELECT 1 FROM user_devices WHERE device_id = $1) \
     AND NOT EXISTS (SELECT 1 FROM sessions WHERE device_id = $1) \
     AND NOT EXISTS (SELECT 1 FROM refresh_families WHERE device_id = $1)";

/// Delete user `sub` and what is theirs; `None` if there is no such user.
pub(super) async fn delete_user(pool: &sqlx::SqlitePool, sub: &str) -> Result<Option<UserDeletion>, StorageError> {
    let mut tx = pool.begin().await.map_err(db)?;
    // A write first, so the transaction holds the write lock from here on; and it says whether the user exists.
    let found = sqlx::query("UPDATE users SET disabled = 1 WHERE sub = $1").bind(sub).execute(&mut *tx).await;
    if found.map_err(db)?.rows_affected() == 0 {
        return Ok(None);
    }
    let devices = sqlx::query(USER_DEVICES).bind(sub).fetch_all(&mut *tx).await.map_err(db)?;
    let devices = devices.iter().map(|r| text(r, "device_id")).collect::<Result<Vec<_>, _>>()?;
    let mut removed = Vec::new();
    for (table, sql) in BY_LINK.iter().chain(BY_SUB) {
        let n = sqlx::query(*sql).bind(sub).execute(&mut *tx).await.map_err(db)?.rows_affected();
        if n > 0 {
            removed.push((*table, n));
        }
    }
    let devices_removed = delete_unshared_devices(&mut tx, &devices).await?;
    if devices_removed > 0 {
        removed.push(("devices", devices_removed));
    }
    tx.commit().await.map_err(db)?;
    Ok(Some(UserDeletion { removed }))
}

/// After the user's own rows are gone: delete those of `devices` nobody else's row names.
async fn delete_unshared_devices(tx: &mut Transaction<'_, Sqlite>, devices: &[String]) -> Result<u64, StorageError> {
    let mut removed = 0;
    for device in devices {
        removed +=
            sqlx::query(DELETE_DEVICE_IF_UNSHARED).bind(device).execute(&mut **tx).await.map_err(db)?.rows_affected();
    }
    Ok(removed)
}

/// Remove the user's passkeys and unfinished passkey ceremonies; the passkeys removed.
pub(super) async fn delete_passkeys(pool: &sqlx::SqlitePool, sub: &str) -> Result<u64, StorageError> {
    let mut tx = pool.begin().await.map_err(db)?;
    let removed = sqlx::query("DELETE FROM passkeys WHERE sub = $1")
        .bind(sub)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
    // A registration started before the reset must not finish after it.
    sqlx::query("DELETE FROM passkey_ceremonies WHERE sub = $1").bind(sub).execute(&mut *tx).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(removed)
}

impl crate::Store {
    /// The rows naming user `sub`, per table that holds any, over every table of the schema with a `sub` column:
    /// what the store keeps about a user (and, after [`AdminStore::delete_user`], that it keeps nothing).
    ///
    /// [`AdminStore::delete_user`]: argus_oauth::admin::AdminStore::delete_user
    pub async fn rows_naming_user(&self, sub: &str) -> Result<Vec<(String, u64)>, StorageError> {
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT m.name FROM sqlite_master m JOIN pragma_table_info(m.name) c \
             WHERE m.type = 'table' AND c.name = 'sub' ORDER BY m.name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut rows = Vec::new();
        for table in tables {
            // The name comes from the schema, not from a caller; quoted as an identifier all the same.
            let sql = format!("SELECT COUNT(*) FROM \"{}\" WHERE sub = $1", table.replace('"', "\"\""));
            let n: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(sub).fetch_one(&self.pool).await.map_err(db)?;
            if n > 0 {
                rows.push((table, n.unsigned_abs()));
            }
        }
        Ok(rows)
    }
}
