//! emr-launcher: hand-offs (the pipeline-events topic through its queue, `kind = handoff`), EMR
//! state changes (EventBridge `aws.emr`), the sweep's and the weekly job's schedules, backfills
//! and retries → runs on EMR, once each. This file only wires: logs, settings read once, clients built once.

use emr_launcher::handler;

use aws_config::BehaviorVersion;
use bondlake_aws::{S3Options, S3Store};
use bondlake_core::launch::{Backend, Launcher};
use bondlake_emr::{ClusterSteps, TransientCluster};
use handler::{BackendSettings, Settings, State};
use lambda_runtime::{LambdaEvent, service_fn};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bondlake_lambda::init_logging();
    let settings = Settings::from_vars(&|name| std::env::var(name).ok())?;
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let handle = tokio::runtime::Handle::current();
    let processed = S3Store::new(
        bondlake_aws::s3_client(&sdk),
        &settings.processed_bucket,
        handle.clone(),
        S3Options::default(),
    );
    let events = bondlake_aws::pipeline_events(&sdk, &settings.events_topic_arn, handle.clone());
    let emr = aws_sdk_emr::Client::new(&sdk);
    let backend: Arc<dyn Backend> = match &settings.backend {
        BackendSettings::Transient(shape) => Arc::new(TransientCluster::new(
            emr,
            handle,
            shape.clone(),
            settings.step.clone(),
        )),
        BackendSettings::Steps { cluster_id } => Arc::new(ClusterSteps::new(
            emr,
            handle,
            cluster_id,
            &settings.log_uri,
            settings.step.clone(),
        )),
    };
    let launcher = Launcher::new(Arc::new(processed), events, backend);
    let state = Arc::new(State {
        launcher,
        raw_bucket: settings.raw_bucket.clone(),
        processed_bucket: settings.processed_bucket.clone(),
        hive: settings.hive.clone(),
        stuck_after: settings.stuck_after,
        log_uri: settings.log_uri.clone(),
    });
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<handler::Invocation>| handler::handle(state.clone(), event),
    ))
    .await
}
