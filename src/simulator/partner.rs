//! The simulated partner: scripted replies first, then fault rules, then the
//! stateful partner, all decided under one lock.

use std::sync::{Mutex, MutexGuard, PoisonError};

use axum::http::StatusCode;
use tracing::debug;

use super::answer::{Answer, CardData};
use super::applications::Applications;
use super::config::{Product, SimulatorConfig};
use super::reply::Scalar;
use super::request::OpenCardRequest;
use super::rules::{self, Effect, Endpoint, FaultRule};
use super::scenario::{Scenario, Scenarios};
use super::stats::{RequestStats, Totals};

/// The partner's behaviour, shared by every connection.
pub(crate) struct Partner {
    products: Vec<Product>,
    review_checks: u32,
    seed: u64,
    book: Mutex<Book>,
}

/// Everything that changes while the simulator runs.
struct Book {
    applications: Applications,
    totals: Totals,
    scenarios: Scenarios,
    rules: Vec<FaultRule>,
}

/// Everything `GET /_stats` shows.
#[derive(serde::Serialize)]
pub(crate) struct Snapshot {
    totals: Totals,
    requests: std::collections::BTreeMap<String, RequestStats>,
}

impl Partner {
    /// A partner that knows nothing yet.
    pub(crate) fn new(config: &SimulatorConfig) -> Self {
        let book = Book {
            applications: Applications::default(),
            totals: Totals::default(),
            scenarios: config.scenarios.clone(),
            rules: config.rules.clone(),
        };
        Partner {
            products: config.products.clone(),
            review_checks: config.review_checks,
            seed: config.seed,
            book: Mutex::new(book),
        }
    }

    /// Answers `GET /api/v1/products`.
    pub(crate) fn products(&self) -> Answer {
        let mut book = self.lock();
        // The product list has no request id, so its calls are numbered
        // globally: a rerun repeats its faults only if it calls in the same
        // order.
        let ordinal = u32::try_from(book.totals.products_calls).unwrap_or(u32::MAX);
        book.totals.products_calls += 1;
        self.with_faults(&mut book, Endpoint::Products, "", ordinal, |_| {
            Answer::success(&self.products)
        })
    }

    /// Answers `POST /api/v1/open-card`.
    pub(crate) fn open_card(&self, request: &OpenCardRequest) -> Answer {
        let mut guard = self.lock();
        let book = &mut *guard;
        let request_id = request.request_id.as_str();
        book.totals.open_card_calls += 1;
        let ordinal = book.applications.count_open_card(request_id);

        if let Some(reply) = book
            .scenarios
            .reply(request_id, Endpoint::OpenCard, ordinal)
        {
            debug!(request_id, ordinal, "open-card answered from the script");
            if reply.is_success() {
                book.applications.accept(request_id, request.person);
            }
            return reply.open_card_answer();
        }

        let offered = self.offers(&request.product_id);
        self.with_faults(book, Endpoint::OpenCard, request_id, ordinal, |book| {
            let decision = book
                .applications
                .open_card(request_id, request.person, offered);
            debug!(request_id, code = decision.err(), "open-card answered");
            decision.map_or_else(Answer::error, Answer::success)
        })
    }

    /// Answers `GET /card/status/{requestId}`.
    pub(crate) fn status(&self, request_id: &str) -> Answer {
        let mut guard = self.lock();
        let book = &mut *guard;
        book.totals.status_calls += 1;
        let ordinal = book.applications.count_status(request_id);

        if let Some(reply) = book.scenarios.reply(request_id, Endpoint::Status, ordinal) {
            debug!(request_id, ordinal, "status answered from the script");
            if let Some(card) = reply.card(request_id) {
                book.applications.issue(request_id, card);
            }
            return reply.status_answer(request_id);
        }

        self.with_faults(book, Endpoint::Status, request_id, ordinal, |book| {
            let decision = book
                .applications
                .check_status(request_id, self.review_checks);
            debug!(
                request_id,
                code = decision.as_ref().err(),
                "status answered"
            );
            match decision {
                Ok(card) => Answer::success(CardData {
                    card_number: card.number,
                    exp: card.exp,
                }),
                Err(code) => Answer::error(code),
            }
        })
    }

    /// Counts a call refused for its unreadable body or path; answers 400.
    pub(crate) fn bad_request(&self, call: Endpoint, reason: &str) -> Answer {
        let mut book = self.lock();
        book.totals.bad_requests += 1;
        match call {
            Endpoint::OpenCard => book.totals.open_card_calls += 1,
            Endpoint::Status => book.totals.status_calls += 1,
            Endpoint::Products | Endpoint::Any => book.totals.products_calls += 1,
        }
        debug!(endpoint = %call, reason, "unreadable call refused");
        Answer::complaint(StatusCode::BAD_REQUEST, reason)
    }

    /// Counts a call refused for its credentials.
    pub(crate) fn count_unauthorized(&self) {
        self.lock().totals.unauthorized_calls += 1;
    }

    /// Scripts one request id, replacing its earlier scenario.
    pub(crate) fn script(&self, request_id: &str, scenario: Scenario) {
        self.lock().scenarios.insert(request_id, scenario);
    }

    /// Adds a table of scenarios, replacing those for the same ids.
    pub(crate) fn merge_scenarios(&self, scenarios: Scenarios) {
        self.lock().scenarios.merge(scenarios);
    }

    /// Replaces the fault rules.
    pub(crate) fn set_rules(&self, rules: Vec<FaultRule>) {
        self.lock().rules = rules;
    }

    /// Forgets applications and counts; scenarios and rules stay.
    pub(crate) fn reset(&self) {
        let mut book = self.lock();
        book.applications = Applications::default();
        book.totals = Totals::default();
    }

    /// What happened to one request id.
    pub(crate) fn stats(&self, request_id: &str) -> RequestStats {
        self.lock().applications.stats(request_id)
    }

    /// Counts over all requests.
    pub(crate) fn totals(&self) -> Totals {
        self.lock().totals.clone()
    }

    /// Totals and every request's stats.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let book = self.lock();
        Snapshot {
            totals: book.totals.clone(),
            requests: book.applications.all_stats(),
        }
    }

    /// Runs `process` unless a fault rule replaces it; counts the fault.
    fn with_faults(
        &self,
        book: &mut Book,
        call: Endpoint,
        request_id: &str,
        ordinal: u32,
        process: impl FnOnce(&mut Book) -> Answer,
    ) -> Answer {
        let Some(fault) = rules::pick(&book.rules, self.seed, call, request_id, ordinal) else {
            return process(book);
        };
        let (kind, effect) = (fault.kind(), fault.effect());
        debug!(request_id, endpoint = %call, fault = %kind, "fault injected");
        *book.totals.faults.entry(kind).or_default() += 1;
        match effect {
            Effect::Replace(answer) => answer,
            Effect::Hold(delay) => process(book).after(delay),
        }
    }

    /// Whether the product list holds this id (given as a string or number).
    fn offers(&self, product_id: &Scalar) -> bool {
        let id = product_id.to_string().trim().parse::<u32>();
        id.is_ok_and(|id| self.products.iter().any(|product| product.id == id))
    }

    fn lock(&self) -> MutexGuard<'_, Book> {
        // A panic while the lock was held leaves counters at worst one call
        // off; a simulator that keeps answering is worth more than that.
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
