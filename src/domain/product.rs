//! Products the partner offers, such as "HUMO virtual".

use std::fmt;

/// A product id from the partner's product list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProductId(pub u64);

impl fmt::Display for ProductId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One entry of the partner's product list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Product {
    /// The id a command names.
    pub id: ProductId,
    /// The partner's name for it, e.g. "VISA virtual".
    pub name: String,
}
