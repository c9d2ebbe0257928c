//! What every handler shares, whichever broker session it runs in.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::broker::Topology;
use crate::issuance::Plan;
use crate::partner::{Breaker, Catalogue, ClientError, PartnerClient};
use crate::settings::{IssuanceSettings, Settings};

/// The partner side, the policy's plan and the names on the broker.
pub struct Services {
    /// The partner's API.
    pub partner: PartnerClient,
    /// The products the partner offers.
    pub catalogue: Catalogue,
    /// Pauses open-card calls while the partner keeps failing.
    pub breaker: Breaker,
    /// Bounds partner calls in flight to the configured concurrency.
    pub partner_slots: Arc<Semaphore>,
    /// The delays decisions choose from.
    pub plan: Plan,
    /// The request lifecycle settings.
    pub issuance: IssuanceSettings,
    /// Names on the broker.
    pub topology: Topology,
}

impl Services {
    /// Builds the shared parts from the settings.
    pub fn new(settings: &Settings) -> Result<Self, ClientError> {
        let concurrency = usize::from(settings.worker.concurrency);
        let plan = Plan::new(&settings.issuance);
        Ok(Self {
            partner: PartnerClient::new(&settings.partner, concurrency)?,
            catalogue: Catalogue::new(),
            breaker: Breaker::new(
                settings.partner.breaker_window,
                settings.partner.breaker_open,
                settings.issuance.longest_retry_delay(),
            ),
            partner_slots: Arc::new(Semaphore::new(concurrency)),
            topology: Topology::new(&settings.broker, plan.all_delays()),
            plan,
            issuance: settings.issuance.clone(),
        })
    }
}
