//! msk-lander: the MSK event source mapping's batches → one gzip CSV object per topic-partition
//! in the raw bucket (poison records quarantined in the processed bucket), and a `landed` event
//! each. This file only wires: logs, settings read once, clients and the topic table built once.

use msk_lander::handler;

use aws_config::BehaviorVersion;
use bondlake_aws::{S3Options, S3Store};
use handler::{Settings, State};
use lambda_runtime::{LambdaEvent, service_fn};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bondlake_lambda::init_logging();
    let settings = Settings::from_vars(&|name| std::env::var(name).ok())?;
    // A bad topic table or contract stops the cold start, not a partition.
    let lander = settings.lander()?;
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let handle = tokio::runtime::Handle::current();
    let s3 = bondlake_aws::s3_client(&sdk);
    let store =
        |bucket: &str| S3Store::new(s3.clone(), bucket, handle.clone(), S3Options::default());
    let events = bondlake_aws::pipeline_events(&sdk, &settings.events_topic_arn, handle.clone());
    let state = Arc::new(State {
        lander,
        raw: Arc::new(store(&settings.raw_bucket)),
        quarantine: Arc::new(store(&settings.processed_bucket)),
        events,
    });
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<bondlake_lambda::KafkaBatch>| {
            handler::handle(state.clone(), event)
        },
    ))
    .await
}
