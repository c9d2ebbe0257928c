//! The partner's product list, fetched at start and refreshed.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::PartnerClient;
use crate::domain::{Product, ProductId};
use crate::metrics;

/// The products the partner offers, as last fetched. Validation asks it
/// whether a command's product exists.
#[derive(Default)]
pub struct Catalogue {
    products: RwLock<Option<Arc<Vec<Product>>>>,
}

impl Catalogue {
    /// An empty catalogue; nothing is offered until the first fetch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a list has been fetched at least once.
    pub fn is_loaded(&self) -> bool {
        self.read().is_some()
    }

    /// Whether the partner offers the product.
    pub fn offers(&self, id: ProductId) -> bool {
        self.read()
            .is_some_and(|products| products.iter().any(|product| product.id == id))
    }

    /// The list as last fetched.
    pub fn products(&self) -> Vec<Product> {
        self.read()
            .map(|products| products.to_vec())
            .unwrap_or_default()
    }

    /// Fetches the list once; on failure the previous list stays.
    pub async fn refresh(&self, client: &PartnerClient) -> bool {
        match client.products().await {
            Ok(products) => self.replace(products),
            Err(error) if self.is_loaded() => {
                tracing::warn!(%error, "cannot refresh the product list; keeping the last one");
                false
            }
            Err(error) => {
                tracing::warn!(
                    %error,
                    "no product list yet, so no command can be checked: not consuming until \
                     the partner answers; asking again"
                );
                false
            }
        }
    }

    /// Takes a fetched list, unless it is empty and a list is known: an
    /// empty list from a partner in trouble would turn every command away as
    /// an unknown product, and the last list is safer.
    fn replace(&self, products: Vec<Product>) -> bool {
        if products.is_empty() && self.is_loaded() {
            tracing::warn!("the partner listed no products; keeping the last list");
            return false;
        }
        metrics::products_known(products.len());
        tracing::debug!(count = products.len(), "product list fetched");
        *self
            .products
            .write()
            .expect("catalogue lock is never poisoned") = Some(Arc::new(products));
        true
    }

    /// Fetches until the first list arrives, backing off from `first_wait`
    /// to a minute, or until `stop` fires. Returns whether a list arrived.
    pub async fn load(
        &self,
        client: &PartnerClient,
        first_wait: Duration,
        stop: &CancellationToken,
    ) -> bool {
        let mut wait = first_wait;
        while !self.refresh(client).await {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stop.cancelled() => return false,
            }
            wait = (wait * 2).min(Duration::from_secs(60));
        }
        true
    }

    /// Refreshes every `every` until `stop` fires.
    pub async fn keep_fresh(
        &self,
        client: &PartnerClient,
        every: Duration,
        stop: CancellationToken,
    ) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => { self.refresh(client).await; }
                () = stop.cancelled() => return,
            }
        }
    }

    fn read(&self) -> Option<Arc<Vec<Product>>> {
        self.products
            .read()
            .expect("catalogue lock is never poisoned")
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn humo() -> Product {
        Product {
            id: ProductId(1),
            name: "HUMO virtual".into(),
        }
    }

    #[test]
    fn nothing_is_offered_before_the_first_list() {
        let catalogue = Catalogue::new();

        assert!(!catalogue.is_loaded());
        assert!(!catalogue.offers(ProductId(1)));
    }

    #[test]
    fn an_empty_list_does_not_replace_a_known_one() {
        let catalogue = Catalogue::new();
        catalogue.replace(vec![humo()]);

        let replaced = catalogue.replace(vec![]);

        assert!(!replaced);
        assert!(catalogue.offers(ProductId(1)));
    }

    #[test]
    fn a_new_list_replaces_the_old_one() {
        let catalogue = Catalogue::new();
        catalogue.replace(vec![humo()]);

        catalogue.replace(vec![Product {
            id: ProductId(2),
            name: "VISA virtual".into(),
        }]);

        assert!(!catalogue.offers(ProductId(1)));
        assert!(catalogue.offers(ProductId(2)));
    }
}
