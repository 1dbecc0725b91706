//! Giving deferred messages back to their queue at once: a message returned in a partial batch
//! response only reappears after the queue's visibility timeout (an hour and a half on the raw
//! queue), so the csv-processor sets the visibility of the ones it deferred to zero.

use std::collections::BTreeMap;

/// A message to give back to its queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deferral {
    /// The queue's ARN (the record's `eventSourceARN`).
    pub queue_arn: String,
    /// The receipt handle of this receive.
    pub receipt_handle: String,
}

/// The queue URL an SQS ARN names (`arn:aws:sqs:us-east-1:123456789012:name` →
/// `https://sqs.us-east-1.amazonaws.com/123456789012/name`).
pub fn queue_url(arn: &str) -> Option<String> {
    let mut parts = arn.split(':');
    let (Some("arn"), Some(partition), Some("sqs"), Some(region), Some(account), Some(name)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let suffix = match partition {
        "aws-cn" => "amazonaws.com.cn",
        _ => "amazonaws.com",
    };
    Some(format!("https://sqs.{region}.{suffix}/{account}/{name}"))
}

/// Makes every deferred message visible again now (ChangeMessageVisibilityBatch, ten at a
/// time). Returns how many were released; a failure is only logged by the caller: the messages
/// then reappear after the visibility timeout, later but not lost.
pub async fn release(client: &aws_sdk_sqs::Client, deferred: &[Deferral]) -> Result<usize, String> {
    use aws_sdk_sqs::types::ChangeMessageVisibilityBatchRequestEntry as Entry;
    let mut by_queue: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for d in deferred {
        by_queue
            .entry(d.queue_arn.as_str())
            .or_default()
            .push(d.receipt_handle.as_str());
    }
    let mut released = 0;
    for (arn, handles) in by_queue {
        let url = queue_url(arn).ok_or_else(|| format!("`{arn}` is not an SQS queue ARN"))?;
        for chunk in handles.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, handle)| {
                    Entry::builder()
                        .id(format!("m{i}"))
                        .receipt_handle(*handle)
                        .visibility_timeout(0)
                        .build()
                        .map_err(|e| e.to_string())
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = client
                .change_message_visibility_batch()
                .queue_url(&url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "ChangeMessageVisibilityBatch on {url}: {}",
                        e.into_service_error()
                    )
                })?;
            if let Some(f) = out.failed().first() {
                return Err(format!(
                    "ChangeMessageVisibilityBatch on {url}: {} of {} refused ({}: {})",
                    out.failed().len(),
                    chunk.len(),
                    f.code(),
                    f.message().unwrap_or("")
                ));
            }
            released += out.successful().len();
        }
    }
    Ok(released)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::operation::change_message_visibility_batch::ChangeMessageVisibilityBatchOutput;
    use aws_sdk_sqs::types::ChangeMessageVisibilityBatchResultEntry;
    use aws_smithy_mocks::{mock, mock_client};

    #[test]
    fn queue_urls_come_from_arns() {
        assert_eq!(
            queue_url("arn:aws:sqs:eu-west-1:123456789012:bondlake-dev-raw-events").as_deref(),
            Some("https://sqs.eu-west-1.amazonaws.com/123456789012/bondlake-dev-raw-events")
        );
        assert_eq!(
            queue_url("arn:aws-cn:sqs:cn-north-1:123456789012:q").as_deref(),
            Some("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q")
        );
        assert_eq!(queue_url("arn:aws:sns:us-east-1:123456789012:t"), None);
    }

    #[tokio::test]
    async fn deferred_messages_are_made_visible_at_once_on_their_own_queue() {
        let rule = mock!(aws_sdk_sqs::Client::change_message_visibility_batch)
            .match_requests(|r| {
                r.queue_url() == Some("https://sqs.us-east-1.amazonaws.com/123456789012/raw")
                    && r.entries().len() == 2
                    && r.entries()
                        .iter()
                        .all(|e| e.visibility_timeout() == Some(0))
                    && r.entries()[1].receipt_handle() == "rh-2"
            })
            .then_output(|| {
                ChangeMessageVisibilityBatchOutput::builder()
                    .successful(
                        ChangeMessageVisibilityBatchResultEntry::builder()
                            .id("m0")
                            .build()
                            .expect("entry"),
                    )
                    .successful(
                        ChangeMessageVisibilityBatchResultEntry::builder()
                            .id("m1")
                            .build()
                            .expect("entry"),
                    )
                    .set_failed(Some(Vec::new()))
                    .build()
                    .expect("output")
            });
        let client = mock_client!(aws_sdk_sqs, [&rule]);
        let deferred: Vec<Deferral> = ["rh-1", "rh-2"]
            .iter()
            .map(|h| Deferral {
                queue_arn: "arn:aws:sqs:us-east-1:123456789012:raw".into(),
                receipt_handle: (*h).into(),
            })
            .collect();
        assert_eq!(release(&client, &deferred).await, Ok(2));
        assert_eq!(rule.num_calls(), 1);
    }
}
