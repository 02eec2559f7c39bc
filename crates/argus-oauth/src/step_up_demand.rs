//! Step-up demands kept for gates that start later: a configured trigger asked that a session sign in again
//! ([`argus_model::StepUpDemand`]); the control channel tells running gates, the store the ones to come.

use std::time::Duration;

use argus_model::{StepUpDemand, Timestamp};

use crate::store::StorageError;

/// Storage of step-up demands. Implemented by `argus_store::Store`.
#[async_trait::async_trait]
pub trait StepUpDemandStore: Send + Sync + 'static {
    /// Keep `demand` until its `until`; demands that ended before `now` are deleted on the way, so the table stays
    /// as small as the set in force.
    async fn add_step_up_demand(&self, demand: &StepUpDemand, now: Timestamp) -> Result<(), StorageError>;
    /// The demands in force at `now`, oldest first.
    async fn active_step_up_demands(&self, now: Timestamp) -> Result<Vec<StepUpDemand>, StorageError>;
}

/// The demand that session `sid` sign in again, for something it did at `seen` (the issuer's triggers and watch's
/// `step_up` both ask through this).
///
/// `not_before` is the first whole second after `seen`: `auth_time` is in whole seconds, and the sign-in that did it
/// (at or before `seen`) must not meet the demand. It stays in force while a token of the old sign-in can still be
/// presented: refreshes mint tokens with the sign-in's old `auth_time` for as long as the family lives (`minting`,
/// the refresh family's absolute lifetime), and each lives up to `longest_access`.
pub fn step_up_demand(
    sid: &str,
    seen: Timestamp,
    now: Timestamp,
    minting: Duration,
    longest_access: Duration,
) -> StepUpDemand {
    let not_before = Timestamp::from_secs(seen.as_secs() + 1);
    StepUpDemand {
        id: argus_model::id::new_id(),
        sid: sid.to_owned(),
        not_before,
        until: not_before.max(now).plus(minting).plus(longest_access),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sign_in_behind_the_event_does_not_meet_the_demand() {
        // auth_time is whole seconds, at or before the event.
        for seen_ms in [5_000, 5_001, 5_999] {
            let d = step_up_demand(
                "s",
                Timestamp::from_millis(seen_ms),
                Timestamp::from_secs(7),
                Duration::ZERO,
                Duration::ZERO,
            );
            assert_eq!(d.not_before, Timestamp::from_secs(6));
        }
    }

    #[test]
    fn it_lasts_as_long_as_an_old_token_can_be_minted_and_live() {
        let (minting, access) = (Duration::from_secs(100), Duration::from_secs(10));
        let late = step_up_demand("s", Timestamp::from_secs(5), Timestamp::from_secs(50), minting, access);
        assert_eq!((late.sid.as_str(), late.until), ("s", Timestamp::from_secs(160)));
        let early = step_up_demand("s", Timestamp::from_secs(5), Timestamp::from_secs(2), minting, access);
        assert_eq!(early.until, Timestamp::from_secs(116));
    }
}
