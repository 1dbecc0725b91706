//! The `pipeline-events` topic on SNS, behind [`EventSink`].

use crate::events::{EventSink, PipelineEvent};
use aws_sdk_sns::Client;
use aws_sdk_sns::error::DisplayErrorContext;
use aws_sdk_sns::types::MessageAttributeValue;
use std::io;
use tokio::runtime::Handle;

/// Publishes each event as a JSON message, with `kind`, `dataset` and `stage` as message
/// attributes so subscribers filter without parsing (the EMR launcher takes `kind = handoff`).
#[derive(Clone, Debug)]
pub struct SnsSink {
    client: Client,
    topic_arn: String,
    handle: Handle,
}

impl SnsSink {
    /// A sink for `topic_arn`; requests run on `handle`'s runtime (call from a blocking thread).
    pub fn new(client: Client, topic_arn: &str, handle: Handle) -> Self {
        SnsSink {
            client,
            topic_arn: topic_arn.to_string(),
            handle,
        }
    }
}

fn attribute(value: &str) -> io::Result<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(io::Error::other)
}

impl EventSink for SnsSink {
    fn publish(&self, event: &PipelineEvent) -> io::Result<()> {
        let message = serde_json::to_string(event).map_err(io::Error::other)?;
        let mut request = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(message)
            .message_attributes("kind", attribute(event.kind.as_str())?)
            .message_attributes("stage", attribute(&event.stage)?);
        if let Some(dataset) = &event.dataset {
            request = request.message_attributes("dataset", attribute(dataset)?);
        }
        self.handle
            .block_on(request.send())
            .map(|_| ())
            .map_err(|e| {
                io::Error::other(format!(
                    "SNS Publish to {}: {}",
                    self.topic_arn,
                    DisplayErrorContext(&e)
                ))
            })
    }
}
