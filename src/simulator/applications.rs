//! The stateful partner's memory: which applications it accepted, which
//! customers wait for a card, which cards it issued.

use std::collections::{BTreeMap, HashMap};

use super::card;
use super::codes;
use super::request::PersonKey;
use super::stats::RequestStats;

/// Everything the partner remembers, by request id and by customer.
#[derive(Default)]
pub(crate) struct Applications {
    by_request: HashMap<String, Application>,
    /// Accepted applications not yet issued, per customer; the partner
    /// answers 1000 to a new request id while this is above zero.
    pending_by_person: HashMap<PersonKey, u32>,
}

/// One request id's record.
#[derive(Default)]
struct Application {
    open_card_calls: u32,
    status_calls: u32,
    /// The customer, once the application is accepted.
    accepted_for: Option<PersonKey>,
    /// Status checks answered 1005 so far.
    reviews: u32,
    issued: Option<IssuedCard>,
}

/// A card the partner handed out.
#[derive(Clone)]
pub(crate) struct IssuedCard {
    pub number: String,
    pub exp: String,
}

impl Applications {
    /// Counts an open-card call; returns its ordinal (0 for the first).
    pub(crate) fn count_open_card(&mut self, request_id: &str) -> u32 {
        let application = self.entry(request_id);
        application.open_card_calls += 1;
        application.open_card_calls - 1
    }

    /// Counts a status check; returns its ordinal (0 for the first).
    pub(crate) fn count_status(&mut self, request_id: &str) -> u32 {
        let application = self.entry(request_id);
        application.status_calls += 1;
        application.status_calls - 1
    }

    /// Decides an open-card call as the partner would; `Err` holds the code.
    ///
    /// A repeated request id gets 1002 before anything else, because that is
    /// what tells a client retrying after a timeout that its first call got
    /// through.
    pub(crate) fn open_card(
        &mut self,
        request_id: &str,
        person: PersonKey,
        product_offered: bool,
    ) -> Result<(), &'static str> {
        if self.entry(request_id).accepted_for.is_some() {
            return Err(codes::DUPLICATE_REQUEST_ID);
        }
        if !product_offered {
            return Err(codes::UNSUPPORTED_CARD);
        }
        if self.pending_by_person.contains_key(&person) {
            return Err(codes::ALREADY_PENDING);
        }
        self.accept(request_id, person);
        Ok(())
    }

    /// Records an application as accepted, unless it already is.
    pub(crate) fn accept(&mut self, request_id: &str, person: PersonKey) {
        let application = self.entry(request_id);
        if application.accepted_for.is_none() {
            application.accepted_for = Some(person);
            *self.pending_by_person.entry(person).or_default() += 1;
        }
    }

    /// Decides a status check: 1003 unless accepted, 1005 for the first
    /// `review_checks` checks, then the card (the same one every time).
    pub(crate) fn check_status(
        &mut self,
        request_id: &str,
        review_checks: u32,
    ) -> Result<IssuedCard, &'static str> {
        let application = self.entry(request_id);
        if application.accepted_for.is_none() {
            return Err(codes::NOT_FOUND);
        }
        if let Some(card) = &application.issued {
            return Ok(card.clone());
        }
        if application.reviews < review_checks {
            application.reviews += 1;
            return Err(codes::UNDER_REVIEW);
        }
        let card = IssuedCard::for_request(request_id);
        self.issue(request_id, card.clone());
        Ok(card)
    }

    /// Records a card handed out for an accepted application, which frees
    /// its customer to apply again; ignored if not accepted or issued already.
    pub(crate) fn issue(&mut self, request_id: &str, card: IssuedCard) {
        let application = self.entry(request_id);
        let Some(person) = application.accepted_for else {
            return;
        };
        if application.issued.is_some() {
            return;
        }
        application.issued = Some(card);
        if let Some(pending) = self.pending_by_person.get_mut(&person) {
            *pending -= 1;
            if *pending == 0 {
                self.pending_by_person.remove(&person);
            }
        }
    }

    /// The stats of one request id (all zero if never seen).
    pub(crate) fn stats(&self, request_id: &str) -> RequestStats {
        self.by_request
            .get(request_id)
            .map(Application::stats)
            .unwrap_or_default()
    }

    /// The stats of every request id seen, in order.
    pub(crate) fn all_stats(&self) -> BTreeMap<String, RequestStats> {
        self.by_request
            .iter()
            .map(|(id, application)| (id.clone(), application.stats()))
            .collect()
    }

    fn entry(&mut self, request_id: &str) -> &mut Application {
        // Look up before inserting: the id is allocated only the first time.
        if !self.by_request.contains_key(request_id) {
            self.by_request
                .insert(request_id.to_owned(), Application::default());
        }
        self.by_request.get_mut(request_id).expect("inserted above")
    }
}

impl Application {
    fn stats(&self) -> RequestStats {
        RequestStats {
            open_card_calls: self.open_card_calls,
            status_calls: self.status_calls,
            accepted: self.accepted_for.is_some(),
            issued: self.issued.is_some(),
            card: self.issued.as_ref().map(|card| card.number.clone()),
            exp: self.issued.as_ref().map(|card| card.exp.clone()),
        }
    }
}

impl IssuedCard {
    /// The card the stateful partner issues for a request id.
    pub(crate) fn for_request(request_id: &str) -> Self {
        IssuedCard {
            number: card::card_number(request_id),
            exp: card::expiry(request_id),
        }
    }
}
