//! The notifier's webhook URL, read from Secrets Manager or SSM Parameter Store and cached
//! across invocations. The value is a credential: it is returned as a [`WebhookUrl`], which never
//! prints itself, and no error here includes it.

use crate::WebhookUrl;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Where the URL is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A Secrets Manager secret (ARN or name) whose string is the URL, or JSON with `url` or
    /// `webhook_url`.
    SecretsManager(String),
    /// An SSM parameter (a SecureString, decrypted) holding the URL, or the same JSON.
    Parameter(String),
}

/// Why the URL could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The service call failed (its code and message kept; a retry may work).
    #[error("reading the Slack webhook from {source_name}: {message}")]
    Fetch {
        /// The secret's or parameter's name.
        source_name: String,
        /// The SDK's error.
        message: String,
    },
    /// The value is not a usable URL (never shown).
    #[error("the Slack webhook in {source_name} is unusable: {reason}")]
    Unusable {
        /// The secret's or parameter's name.
        source_name: String,
        /// Why, without the value.
        reason: String,
    },
}

/// The URL, fetched on first use and again after `ttl` (so a rotated secret is picked up).
pub struct CachedWebhook {
    source: SecretSource,
    secrets: aws_sdk_secretsmanager::Client,
    ssm: aws_sdk_ssm::Client,
    ttl: Duration,
    cached: Mutex<Option<(WebhookUrl, Instant)>>,
}

impl CachedWebhook {
    /// A cache over `source`.
    pub fn new(
        source: SecretSource,
        secrets: aws_sdk_secretsmanager::Client,
        ssm: aws_sdk_ssm::Client,
        ttl: Duration,
    ) -> Self {
        CachedWebhook {
            source,
            secrets,
            ssm,
            ttl,
            cached: Mutex::new(None),
        }
    }

    /// The URL: cached, or fetched when the cache is empty or older than the TTL.
    pub async fn get(&self) -> Result<WebhookUrl, SecretError> {
        let mut cached = self.cached.lock().await;
        if let Some((url, at)) = cached.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(url.clone());
        }
        let url = self.fetch().await?;
        *cached = Some((url.clone(), Instant::now()));
        Ok(url)
    }

    async fn fetch(&self) -> Result<WebhookUrl, SecretError> {
        let (name, value) = match &self.source {
            SecretSource::SecretsManager(id) => {
                let out = self
                    .secrets
                    .get_secret_value()
                    .secret_id(id)
                    .send()
                    .await
                    .map_err(|e| SecretError::Fetch {
                        source_name: id.clone(),
                        message: DisplayErrorContext(&e).to_string(),
                    })?;
                (id, out.secret_string)
            }
            SecretSource::Parameter(name) => {
                let out = self
                    .ssm
                    .get_parameter()
                    .name(name)
                    .with_decryption(true)
                    .send()
                    .await
                    .map_err(|e| SecretError::Fetch {
                        source_name: name.clone(),
                        message: aws_sdk_ssm::error::DisplayErrorContext(&e).to_string(),
                    })?;
                (name, out.parameter.and_then(|p| p.value))
            }
        };
        let unusable = |reason: &str| SecretError::Unusable {
            source_name: name.clone(),
            reason: reason.to_string(),
        };
        let value = value.ok_or_else(|| unusable("it has no string value"))?;
        let url = match serde_json::from_str::<serde_json::Value>(&value) {
            Ok(serde_json::Value::Object(o)) => o
                .get("url")
                .or_else(|| o.get("webhook_url"))
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .ok_or_else(|| unusable("its JSON has no `url` or `webhook_url`"))?,
            _ => value,
        };
        WebhookUrl::parse(&url).map_err(|e| unusable(&e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput;
    use aws_sdk_ssm::operation::get_parameter::GetParameterOutput;
    use aws_sdk_ssm::types::Parameter;
    use aws_smithy_mocks::{mock, mock_client};

    const HOOK: &str = "https://hooks.slack.com/services/T0/B0/TOPSECRET";

    #[tokio::test]
    async fn the_secret_is_fetched_once_and_cached() {
        let rule = mock!(aws_sdk_secretsmanager::Client::get_secret_value)
            .match_requests(|r| r.secret_id() == Some("slack-webhook"))
            .then_output(|| {
                GetSecretValueOutput::builder()
                    .secret_string(format!("{{\"url\": \"{HOOK}\"}}"))
                    .build()
            });
        let secrets = mock_client!(aws_sdk_secretsmanager, [&rule]);
        let ssm_rule = mock!(aws_sdk_ssm::Client::get_parameter)
            .then_output(|| GetParameterOutput::builder().build());
        let ssm = mock_client!(aws_sdk_ssm, [&ssm_rule]);
        let cache = CachedWebhook::new(
            SecretSource::SecretsManager("slack-webhook".into()),
            secrets,
            ssm,
            Duration::from_secs(600),
        );
        for _ in 0..3 {
            assert_eq!(cache.get().await.expect("url").host(), "hooks.slack.com");
        }
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_parameter_is_decrypted_and_a_bad_value_is_not_shown() {
        let rule = mock!(aws_sdk_ssm::Client::get_parameter)
            .match_requests(|r| {
                r.name() == Some("/bondlake/slack") && r.with_decryption() == Some(true)
            })
            .then_output(|| {
                GetParameterOutput::builder()
                    .parameter(Parameter::builder().value("not a url TOPSECRET").build())
                    .build()
            });
        let ssm = mock_client!(aws_sdk_ssm, [&rule]);
        let sm_rule = mock!(aws_sdk_secretsmanager::Client::get_secret_value)
            .then_output(|| GetSecretValueOutput::builder().build());
        let secrets = mock_client!(aws_sdk_secretsmanager, [&sm_rule]);
        let cache = CachedWebhook::new(
            SecretSource::Parameter("/bondlake/slack".into()),
            secrets,
            ssm,
            Duration::from_secs(600),
        );
        let e = cache.get().await.expect_err("unusable").to_string();
        assert!(
            e.starts_with("the Slack webhook in /bondlake/slack is unusable"),
            "{e}"
        );
        assert!(!e.contains("TOPSECRET"), "{e}");
    }
}
