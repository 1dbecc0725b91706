//! The topic table (`contracts/topics.toml`): which topic feeds which dataset, in which format.

use super::*;

/// How a topic's record values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One CSV line in the contract's vendor-column order, no header.
    Csv,
    /// One JSON object keyed by column name.
    Json,
}

/// One row of the topic table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    /// The Kafka topic.
    pub name: String,
    /// The dataset its records belong to.
    pub dataset: String,
    /// How its values are written.
    pub format: Format,
}

/// Topic → dataset and format (`contracts/topics.toml`).
#[derive(Debug, Clone)]
pub struct Topics {
    topics: Vec<Topic>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicsFile {
    #[serde(default)]
    topic: Vec<Topic>,
}

impl Topics {
    /// Reads a topic table; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Topics, LandError> {
        let file: TopicsFile =
            toml::from_str(text).map_err(|e| LandError::Config(format!("{origin}: {e}")))?;
        for (i, t) in file.topic.iter().enumerate() {
            if !is_topic_name(&t.name) {
                return Err(LandError::Config(format!(
                    "{origin}: topic {}: `{}` is not a Kafka topic name ([A-Za-z0-9._-], 1 to 249 characters)",
                    i + 1,
                    t.name
                )));
            }
            if file.topic[..i].iter().any(|o| o.name == t.name) {
                return Err(LandError::Config(format!(
                    "{origin}: topic `{}` is listed twice",
                    t.name
                )));
            }
        }
        Ok(Topics { topics: file.topic })
    }

    /// The built-in table.
    pub fn builtin() -> Topics {
        // A test parses BUILTIN_TOPICS, so this cannot fail in a released binary.
        Topics::from_toml(BUILTIN_TOPICS, "built-in topics").unwrap_or_else(|e| panic!("{e}"))
    }

    /// The entry for `name`.
    pub fn get(&self, name: &str) -> Option<&Topic> {
        self.topics.iter().find(|t| t.name == name)
    }

    /// Every entry, in file order.
    pub fn all(&self) -> &[Topic] {
        &self.topics
    }
}

pub(super) fn is_topic_name(s: &str) -> bool {
    (1..=249).contains(&s.len())
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A topic name as a key segment (Kafka allows only these characters; a record claiming
/// another name cannot escape its folder).
pub(super) fn sanitize(topic: &str) -> String {
    if is_topic_name(topic) {
        topic.to_string()
    } else {
        topic
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }
}
