//! warehouse-loader: a manifest landing in the processed bucket (its S3 notification, through the
//! SQS queue) → Redshift through the Data API, reconciled, recorded in the ledger, and a `loaded`
//! or `load_failed` event on `pipeline-events`. With `WAREHOUSE=mysql` the same code is the weekly
//! chain's export into RDS MySQL. This file only wires: logs, settings read once, clients built
//! once, the warehouse's schema brought up to the contracts at cold start.

use warehouse_loader::handler;

use aws_config::BehaviorVersion;
use bondlake_aws::{S3Options, S3Store};
use bondlake_core::warehouse::{Loader, Warehouse};
use bondlake_warehouse_mysql::{MySql, Secret};
use bondlake_warehouse_redshift::{Polling, Redshift};
use handler::{Settings, State, WarehouseKind};
use lambda_runtime::{LambdaEvent, service_fn};
use std::sync::{Arc, Mutex};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bondlake_lambda::init_logging();
    let settings = Settings::from_vars(&|name| std::env::var(name).ok())?;
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let handle = tokio::runtime::Handle::current();
    match settings.warehouse.clone() {
        WarehouseKind::Redshift => {
            let redshift = Redshift::new(
                aws_sdk_redshiftdata::Client::new(&sdk),
                settings.target.clone(),
                Polling::default(),
                handle,
            )?;
            let schema = settings.schema.clone();
            serve(settings, &sdk, redshift, schema).await
        }
        WarehouseKind::MySql { secret_arn, tls_ca } => {
            let secret = aws_sdk_secretsmanager::Client::new(&sdk)
                .get_secret_value()
                .secret_id(&secret_arn)
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "reading the MySQL secret {secret_arn}: {}",
                        aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                    )
                })?;
            let secret = Secret::parse(secret.secret_string().unwrap_or(""))?;
            let mysql =
                tokio::task::spawn_blocking(move || MySql::connect_to(&secret, tls_ca.as_deref()))
                    .await??;
            // MySQL's schema is its database.
            let schema = mysql.database().to_string();
            serve(settings, &sdk, mysql, schema).await
        }
    }
}

/// Brings the warehouse's schema up to the contracts, then serves invocations.
async fn serve<W: Warehouse + Send + 'static>(
    settings: Settings,
    sdk: &aws_types::SdkConfig,
    warehouse: W,
    schema: String,
) -> Result<(), lambda_runtime::Error> {
    let handle = tokio::runtime::Handle::current();
    let processed = S3Store::new(
        bondlake_aws::s3_client(sdk),
        &settings.target.bucket,
        handle.clone(),
        S3Options::default(),
    );
    let events = bondlake_aws::pipeline_events(sdk, &settings.events_topic_arn, handle);
    let contracts = settings.contracts()?;
    // The schema's DDL blocks (the Data API, a MySQL session): off the async workers.
    let loader =
        tokio::task::spawn_blocking(move || Loader::new(warehouse, &schema, &contracts)).await??;
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
