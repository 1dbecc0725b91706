//! warehouse-loader: a manifest landing in the processed bucket (its S3 notification, through the
//! SQS queue) → Redshift through the Data API, reconciled, recorded in the ledger, and a `loaded`
//! or `load_failed` event on `pipeline-events`. This file only wires: logs, settings read once,
//! clients built once, the warehouse's schema brought up to the contracts at cold start.

use warehouse_loader::handler;

use aws_config::BehaviorVersion;
use bondlake_aws::{S3Options, S3Store};
use bondlake_core::warehouse::Loader;
use bondlake_warehouse_redshift::{Polling, Redshift};
use handler::{Settings, State};
use lambda_runtime::{LambdaEvent, service_fn};
use std::sync::{Arc, Mutex};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bondlake_lambda::init_logging();
    let settings = Settings::from_vars(&|name| std::env::var(name).ok())?;
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let handle = tokio::runtime::Handle::current();
    let processed = S3Store::new(
        bondlake_aws::s3_client(&sdk),
        &settings.target.bucket,
        handle.clone(),
        S3Options::default(),
    );
    let events = bondlake_aws::pipeline_events(&sdk, &settings.events_topic_arn, handle.clone());
    let redshift = Redshift::new(
        aws_sdk_redshiftdata::Client::new(&sdk),
        settings.target.clone(),
        Polling::default(),
        handle,
    )?;
    let contracts = settings.contracts()?;
    let schema = settings.schema.clone();
    // The schema's DDL blocks on the Data API: off the async workers.
    let loader =
        tokio::task::spawn_blocking(move || Loader::new(redshift, &schema, &contracts)).await??;
    let state = Arc::new(State {
        settings,
        loader: Mutex::new(loader),
        processed: Arc::new(processed),
        events,
    });
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<handler::Invocation>| handler::handle(state.clone(), event),
    ))
    .await
}
