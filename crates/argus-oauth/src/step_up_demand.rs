//! Step-up demands kept for gates that start later: a configured trigger asked that a session sign in again
//! ([`argus_model::StepUpDemand`]); the control channel tells running gates, the store the ones to come.

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
