//! The MedMij resource availability check: a `bsn` and a minimum age.

use std::sync::Arc;

use async_trait::async_trait;
use jiff::civil::Date;
use oauth_core::{Account, Client, ResourceCheck, ResourceDecision, Scope};
use time::OffsetDateTime;

use crate::OclClients;
use crate::age::{age_reached, amsterdam_date};

/// The check for OCL clients; other clients go to `inner`.
pub struct MedMijCheck {
    ocl: Arc<OclClients>,
    min_age: i16,
    inner: Arc<dyn ResourceCheck>,
}

impl std::fmt::Debug for MedMijCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MedMijCheck").field("min_age", &self.min_age).finish_non_exhaustive()
    }
}

impl MedMijCheck {
    /// Refuses OCL clients' users without a `bsn` or younger than `min_age`;
    /// asks `inner` for every other client.
    pub fn new(ocl: Arc<OclClients>, min_age: i16, inner: Arc<dyn ResourceCheck>) -> Self {
        MedMijCheck { ocl, min_age, inner }
    }
}

#[async_trait]
impl ResourceCheck for MedMijCheck {
    async fn check(
        &self,
        client: &Client,
        account: &Account,
        scope: &Scope,
        now: OffsetDateTime,
    ) -> oauth_core::Result<ResourceDecision> {
        if !self.ocl.contains(client.id()) {
            return self.inner.check(client, account, scope, now).await;
        }
        let has_bsn =
            account.attributes.get("bsn").is_some_and(|b| b.len() == 9 && b.bytes().all(|c| c.is_ascii_digit()));
        let birth = account.attributes.get("birthdate").and_then(|b| b.parse::<Date>().ok());
        let old_enough = match (birth, amsterdam_date(now)) {
            (Some(birth), Some(today)) => age_reached(birth, today, self.min_age),
            _ => false,
        };
        if has_bsn && old_enough { Ok(ResourceDecision::Allow(scope.clone())) } else { Ok(ResourceDecision::Deny) }
    }
}
