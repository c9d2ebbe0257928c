//! `card-issuer partner`: ask the partner directly.

use clap::{Args, ValueEnum};

use super::{CliError, Loaded};
use crate::domain::RequestId;
use crate::ops::partner_query;
use crate::partner::PartnerClient;
use crate::settings::{PartnerArgs, PartnerSettings};

/// Ask the partner's API directly, with the worker's credentials: its
/// product list (`partner products`), or how one request stands (`partner
/// status REQUEST_ID`). Card numbers are shown masked.
#[derive(Args)]
pub struct PartnerQueryArgs {
    /// What to ask.
    #[arg(value_enum)]
    query: Query,

    /// The request id, for `status`.
    request_id: Option<String>,

    #[command(flatten)]
    partner: PartnerArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum Query {
    /// The products the partner offers.
    Products,
    /// The status of one request.
    Status,
}

/// Runs the query and prints the answer.
pub async fn run(args: &PartnerQueryArgs, loaded: Loaded<'_>) -> Result<(), CliError> {
    let settings = PartnerSettings::load(&loaded.layers()?)?;
    let client = PartnerClient::new(&settings, 1).map_err(CliError::Partner)?;
    match (args.query, &args.request_id) {
        (Query::Products, _) => {
            let products = client.products().await.map_err(CliError::Partner)?;
            for product in products {
                println!("{}\t{}", product.id, product.name);
            }
        }
        (Query::Status, Some(request_id)) => {
            let request_id = RequestId::parse(request_id).map_err(|error| CliError::Input {
                what: "the request id".into(),
                why: error.to_string(),
            })?;
            println!("{}", partner_query::status(&client, &request_id).await);
        }
        (Query::Status, None) => {
            return Err(CliError::Input {
                what: "`partner status`".into(),
                why: "name the request id: card-issuer partner status REQUEST_ID".into(),
            });
        }
    }
    Ok(())
}
