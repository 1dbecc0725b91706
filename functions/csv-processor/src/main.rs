//! csv-processor: S3 `ObjectCreated` notifications (direct, or through the SQS queue) → the
//! bondlake cleaner → Parquet, quarantine and manifest in the processed bucket, and an event on
//! `pipeline-events`. This file only wires: logs, settings read once, clients built once.

use csv_processor::handler;

use aws_config::BehaviorVersion;
use bondlake_aws::{S3Options, S3Store};
use bondlake_core::processor::{Processor, Settings};
use lambda_runtime::{LambdaEvent, service_fn};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bondlake_core::alloc::tune_allocator();
    bondlake_lambda::init_logging();
    let settings = Settings::from_vars(&|name| std::env::var(name).ok())?;
    let topic = settings
        .events_topic_arn
        .clone()
        .ok_or("PIPELINE_EVENTS_TOPIC_ARN is not set")?;
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let s3 = bondlake_aws::s3_client(&sdk);
    let handle = tokio::runtime::Handle::current();
    let options = S3Options {
        part_bytes: settings.upload_part_bytes,
        parts_in_flight: settings.upload_parts_in_flight,
        ..S3Options::default()
    };
    let raw = S3Store::new(s3.clone(), &settings.raw_bucket, handle.clone(), options);
    let processed = S3Store::new(s3, &settings.processed_bucket, handle.clone(), options);
    let events = bondlake_aws::pipeline_events(&sdk, &topic, handle);
    let processor = Processor::new(settings, Arc::new(raw), Arc::new(processed), events)?;
    let function = Arc::new(handler::Function {
        processor,
        sqs: Some(aws_sdk_sqs::Client::new(&sdk)),
    });
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<bondlake_lambda::Incoming>| {
            handler::handle(function.clone(), event)
        },
    ))
    .await
}
