//! notifier: `pipeline-events` (through its SQS queue, whose batching window is the digest window,
//! or an SNS subscription) and CloudWatch alarms → Slack (Block Kit) and plain-text e-mail through
//! the notifications topic. This file only wires: logs, settings read once, clients built once.

use notifier::handler;

use aws_config::BehaviorVersion;
use bondlake_aws::{S3Options, S3Store, SnsText};
use bondlake_core::notify::{SentLog, TextOutlet};
use bondlake_slack::secrets::CachedWebhook;
use handler::{NoText, Settings, State};
use lambda_runtime::{LambdaEvent, service_fn};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bondlake_lambda::init_logging();
    let settings = Settings::from_vars(&|name| std::env::var(name).ok())?;
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let handle = tokio::runtime::Handle::current();
    let log = SentLog::new(Arc::new(S3Store::new(
        bondlake_aws::s3_client(&sdk),
        &settings.processed_bucket,
        handle.clone(),
        S3Options::default(),
    )));
    let text: Arc<dyn TextOutlet> = match &settings.email_topic_arn {
        Some(arn) => Arc::new(SnsText::new(
            aws_sdk_sns::Client::new(&sdk),
            arn,
            handle.clone(),
        )),
        None => Arc::new(NoText),
    };
    let webhook = settings.webhook.clone().map(|source| {
        CachedWebhook::new(
            source,
            aws_sdk_secretsmanager::Client::new(&sdk),
            aws_sdk_ssm::Client::new(&sdk),
            settings.webhook_cache,
        )
    });
    let state = Arc::new(State::new(settings, log, webhook, text, handle));
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<bondlake_lambda::TopicDelivery>| {
            handler::handle(state.clone(), event)
        },
    ))
    .await
}
