//! The AWS adapters: S3 as an [`bondlake_core::store::ObjectStore`], SNS as an
//! [`bondlake_core::events::EventSink`]. They block on a Tokio runtime handle: call them from blocking
//! threads, never from inside an async task.

pub mod s3;
pub mod sns;
pub mod sqs;

pub use s3::{S3Options, S3Store};

use bondlake_core::events::{EventSink, StdoutSink};
use std::sync::Arc;

/// An S3 client from the functions' SDK configuration; `S3_FORCE_PATH_STYLE=true` addresses
/// buckets by path, for S3-protocol servers without virtual hosts (local trials).
pub fn s3_client(sdk: &aws_types::SdkConfig) -> aws_sdk_s3::Client {
    let path_style = std::env::var("S3_FORCE_PATH_STYLE").is_ok_and(|v| v == "true");
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(path_style)
            .build(),
    )
}

/// The `pipeline-events` topic for `topic_arn`; `stdout` prints the events instead of
/// publishing them (local trials with no SNS).
pub fn pipeline_events(
    sdk: &aws_types::SdkConfig,
    topic_arn: &str,
    handle: tokio::runtime::Handle,
) -> Arc<dyn EventSink> {
    if topic_arn == "stdout" {
        Arc::new(StdoutSink)
    } else {
        Arc::new(SnsSink::new(
            aws_sdk_sns::Client::new(sdk),
            topic_arn,
            handle,
        ))
    }
}
pub use sns::SnsSink;
pub use sns::SnsText;
