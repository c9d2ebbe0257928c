//! `card-issuer partner`: ask the partner directly.

use clap::{Args, Subcommand};

use super::{CliError, Loaded};
use crate::domain::RequestId;
use crate::ops::partner_query;
use crate::partner::PartnerClient;
use crate::settings::{PartnerArgs, PartnerSettings};

/// Ask the partner's API directly, with the worker's credentials: its
/// product list, or how one request stands. Card numbers are shown masked.
#[derive(Args)]
pub struct PartnerQueryArgs {
    #[command(subcommand)]
    query: Query,

    #[command(flatten)]
    partner: PartnerArgs,
}

#[derive(Subcommand)]
enum Query {
    /// The products the partner offers.
    Products,
    /// The status of one request.
    Status {
        /// The request id.
        request_id: String,
    },
}

/// Runs the query and prints the answer.
pub async fn run(args: &PartnerQueryArgs, loaded: Loaded<'_>) -> Result<(), CliError> {
    let settings = PartnerSettings::load(&loaded.layers::<PartnerQueryArgs>()?)?;
    let client = PartnerClient::new(&settings, 1).map_err(crate::worker::WorkerError::from)?;
    match &args.query {
        Query::Products => {
            let products = client
                .products()
                .await
                .map_err(crate::worker::WorkerError::from)?;
            for product in products {
                println!("{}\t{}", product.id, product.name);
            }
        }
        Query::Status { request_id } => {
            let request_id = RequestId::parse(request_id).map_err(|error| CliError::Input {
                what: "the request id".into(),
                why: error.to_string(),
            })?;
            println!("{}", partner_query::status(&client, &request_id).await);
        }
    }
    Ok(())
}
