//! The `pipeline-events` topic on SNS, behind [`EventSink`].

use aws_sdk_sns::Client;
use aws_sdk_sns::error::DisplayErrorContext;
use aws_sdk_sns::types::MessageAttributeValue;
use bondlake_core::events::{EventSink, PipelineEvent};
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

/// Sends a Publish request from a blocking thread; the error keeps the SDK's code and message.
fn send(
    handle: &Handle,
    topic_arn: &str,
    request: aws_sdk_sns::operation::publish::builders::PublishFluentBuilder,
) -> io::Result<()> {
    handle.block_on(request.send()).map(|_| ()).map_err(|e| {
        io::Error::other(format!(
            "SNS Publish to {topic_arn}: {}",
            DisplayErrorContext(&e)
        ))
    })
}

impl EventSink for SnsSink {
    fn publish(&self, event: &PipelineEvent) -> io::Result<()> {
        let message = event.to_json();
        let mut request = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(message)
            .message_attributes("kind", attribute(event.kind().as_str())?)
            .message_attributes("stage", attribute(&event.stage)?);
        if let Some(dataset) = &event.dataset {
            request = request.message_attributes("dataset", attribute(dataset)?);
        }
        send(&self.handle, &self.topic_arn, request)
    }
}

/// E-mail subscribers' form of the notifier's messages: each message's plain text published to
/// the notifications topic, its title as the subject.
#[derive(Clone, Debug)]
pub struct SnsText {
    client: Client,
    topic_arn: String,
    handle: Handle,
}

impl SnsText {
    /// An outlet to `topic_arn`; requests run on `handle`'s runtime.
    pub fn new(client: Client, topic_arn: &str, handle: Handle) -> Self {
        SnsText {
            client,
            topic_arn: topic_arn.to_string(),
            handle,
        }
    }
}

/// SNS subjects are ASCII, one line, under 100 characters.
pub fn email_subject(title: &str) -> String {
    let ascii: String = format!("bondlake: {title}")
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    ascii.chars().take(99).collect()
}

impl bondlake_core::notify::TextOutlet for SnsText {
    fn send(&self, message: &bondlake_core::notify::Message) -> io::Result<()> {
        let request = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(email_subject(&message.title))
            .message(&message.text);
        send(&self.handle, &self.topic_arn, request)
    }

    /// A confirmed subscription exists (one still `PendingConfirmation` receives nothing).
    fn has_listeners(&self) -> io::Result<bool> {
        let mut pages = self
            .client
            .list_subscriptions_by_topic()
            .topic_arn(&self.topic_arn)
            .into_paginator()
            .items()
            .send();
        self.handle.block_on(async {
            while let Some(subscription) = pages.next().await {
                let subscription = subscription.map_err(|e| {
                    io::Error::other(format!(
                        "SNS ListSubscriptionsByTopic on {}: {}",
                        self.topic_arn,
                        DisplayErrorContext(&e)
                    ))
                })?;
                if subscription
                    .subscription_arn()
                    .is_some_and(|arn| arn.starts_with("arn:"))
                {
                    return Ok(true);
                }
            }
            Ok(false)
        })
    }
}

#[cfg(test)]
mod tests {
    //! SNS has no local server here: the SDK's own mock interceptor checks the request the real
    //! client builds and drives the reply.

    use super::*;
    use aws_sdk_sns::operation::publish::{PublishError, PublishOutput};
    use aws_sdk_sns::types::error::NotFoundException;
    use aws_smithy_mocks::{mock, mock_client};
    use bondlake_core::events::{HandoffInfo, Outcome, PipelineEvent};
    use bondlake_core::manifest::SourceRef;

    const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:pipeline-events-dev";

    fn event() -> PipelineEvent {
        let handoff = HandoffInfo {
            reason: "size".into(),
            detail: "over the limit".into(),
            request: "s3://processed/handoffs/b.json".into(),
        };
        let mut e = PipelineEvent::new(
            Outcome::Handoff { handoff },
            "csv-processor",
            SourceRef {
                bucket: "raw".into(),
                key: "holdings/a/b.csv.gz".into(),
                etag: "abc".into(),
                bytes: 5,
                ..Default::default()
            },
        );
        e.dataset = Some("investor_holdings".into());
        e
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn publishes_the_event_as_json_with_filterable_attributes() {
        let rule = mock!(aws_sdk_sns::Client::publish)
            .match_requests(|r| {
                let attrs = r.message_attributes().cloned().unwrap_or_default();
                let attr = |k: &str| {
                    attrs
                        .get(k)
                        .and_then(|v| v.string_value().map(String::from))
                };
                let body: serde_json::Value =
                    serde_json::from_str(r.message().unwrap_or("")).unwrap_or_default();
                r.topic_arn() == Some(TOPIC)
                    && attr("kind").as_deref() == Some("handoff")
                    && attr("dataset").as_deref() == Some("investor_holdings")
                    && attr("stage").as_deref() == Some("csv-processor")
                    && body["event_version"] == 1
                    && body["kind"] == "handoff"
                    && body["source"]["key"] == "holdings/a/b.csv.gz"
            })
            .then_output(|| PublishOutput::builder().message_id("m-1").build());
        let client = mock_client!(aws_sdk_sns, [&rule]);
        let rt = runtime();
        let sink = SnsSink::new(client, TOPIC, rt.handle().clone());
        sink.publish(&event()).expect("published");
        assert_eq!(rule.num_calls(), 1);
    }

    #[test]
    fn only_a_confirmed_subscription_is_a_listener() {
        use aws_sdk_sns::operation::list_subscriptions_by_topic::ListSubscriptionsByTopicOutput;
        use aws_sdk_sns::types::Subscription;
        use bondlake_core::notify::TextOutlet as _;
        let subscription = |arn: &str| {
            Subscription::builder()
                .topic_arn(TOPIC)
                .protocol("email")
                .subscription_arn(arn)
                .build()
        };
        let pending = mock!(aws_sdk_sns::Client::list_subscriptions_by_topic)
            .match_requests(|r| r.topic_arn() == Some(TOPIC))
            .then_output(move || {
                ListSubscriptionsByTopicOutput::builder()
                    .subscriptions(subscription("PendingConfirmation"))
                    .build()
            });
        let rt = runtime();
        let text = SnsText::new(
            mock_client!(aws_sdk_sns, [&pending]),
            TOPIC,
            rt.handle().clone(),
        );
        assert!(!text.has_listeners().expect("listed"), "pending only");
        let confirmed =
            mock!(aws_sdk_sns::Client::list_subscriptions_by_topic).then_output(move || {
                ListSubscriptionsByTopicOutput::builder()
                    .subscriptions(subscription("PendingConfirmation"))
                    .subscriptions(subscription(&format!("{TOPIC}:0f1e2d3c")))
                    .build()
            });
        let text = SnsText::new(
            mock_client!(aws_sdk_sns, [&confirmed]),
            TOPIC,
            rt.handle().clone(),
        );
        assert!(text.has_listeners().expect("listed"));
        let none = mock!(aws_sdk_sns::Client::list_subscriptions_by_topic)
            .then_output(|| ListSubscriptionsByTopicOutput::builder().build());
        let text = SnsText::new(
            mock_client!(aws_sdk_sns, [&none]),
            TOPIC,
            rt.handle().clone(),
        );
        assert!(!text.has_listeners().expect("listed"), "no subscription");
    }

    #[test]
    fn a_failed_publish_is_an_error_that_keeps_the_sdk_code() {
        let rule = mock!(aws_sdk_sns::Client::publish).then_error(|| {
            PublishError::NotFoundException(
                NotFoundException::builder()
                    .message("Topic does not exist")
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_sns, [&rule]);
        let rt = runtime();
        let sink = SnsSink::new(client, TOPIC, rt.handle().clone());
        let err = sink.publish(&event()).expect_err("fails").to_string();
        assert!(
            err.starts_with(&format!("SNS Publish to {TOPIC}: ")),
            "{err}"
        );
        assert!(err.contains("Topic does not exist"), "{err}");
    }
}
