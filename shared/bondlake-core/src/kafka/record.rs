//! One Kafka record as the mapping delivers it, and decoding its value into vendor fields.

use super::*;

/// One Kafka record as the event source mapping delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaRecord {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i64,
    /// The offset.
    pub offset: i64,
    /// The record's timestamp, milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// The value, base64-encoded as MSK delivers it; `None` for a tombstone.
    pub value: Option<String>,
    /// Headers in record order (a name may repeat).
    pub headers: Vec<(String, Vec<u8>)>,
    /// Why the event's record could not be read (it is quarantined as `malformed`).
    pub malformed: Option<String>,
}

/// Why a record was quarantined instead of landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Poison {
    /// Its topic is not in the topic table.
    UnknownTopic,
    /// No value (a tombstone).
    Tombstone,
    /// The value is not base64.
    Base64,
    /// The value is larger than [`MAX_VALUE_BYTES`].
    TooLong,
    /// The value is not UTF-8.
    Encoding,
    /// A CSV value that is not exactly one line of the contract's width.
    Ragged,
    /// A JSON value that is not an object.
    Json,
    /// A JSON field holding an object or an array.
    JsonType,
    /// The event's record itself does not parse (a null header value, a field of the wrong
    /// type).
    Malformed,
}

impl Poison {
    /// The reason code written to the quarantine and the event.
    pub fn code(self) -> &'static str {
        self.into()
    }
}

/// The headers as a JSON array of `[name, value]` pairs; a value that is not UTF-8 is written
/// as `base64:` and its base64.
pub(crate) fn headers_json(headers: &[(String, Vec<u8>)]) -> String {
    if headers.is_empty() {
        return String::new();
    }
    let pairs: Vec<[String; 2]> = headers
        .iter()
        .map(|(name, value)| {
            let v = match std::str::from_utf8(value) {
                Ok(s) => s.to_string(),
                Err(_) => format!("base64:{}", BASE64.encode(value)),
            };
            [name.clone(), v]
        })
        .collect();
    serde_json::to_string(&pairs).unwrap_or_default()
}

/// Decodes a record's value into `fields` (the vendor columns, in order), or says why not.
pub(super) fn decode(
    r: &KafkaRecord,
    format: Format,
    columns: &[String],
    fields: &mut Vec<String>,
) -> Result<(), (Poison, String)> {
    fields.clear();
    let encoded = r
        .value
        .as_deref()
        .ok_or((Poison::Tombstone, "the record has no value".to_string()))?;
    if encoded.len() / 4 * 3 > MAX_VALUE_BYTES {
        return Err((
            Poison::TooLong,
            format!(
                "the value is about {} bytes; at most {MAX_VALUE_BYTES} are accepted",
                encoded.len() / 4 * 3
            ),
        ));
    }
    let bytes = BASE64
        .decode(encoded.trim())
        .map_err(|e| (Poison::Base64, format!("the value is not base64: {e}")))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        (
            Poison::Encoding,
            format!(
                "the value is not UTF-8 (invalid byte at {})",
                e.valid_up_to()
            ),
        )
    })?;
    match format {
        Format::Csv => decode_csv(text, columns, fields),
        Format::Json => decode_json(text, columns, fields),
    }
}

fn decode_csv(
    text: &str,
    columns: &[String],
    fields: &mut Vec<String>,
) -> Result<(), (Poison, String)> {
    let line = text.strip_suffix('\n').unwrap_or(text);
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line.as_bytes());
    let mut records = reader.records();
    let record = match records.next() {
        Some(Ok(r)) => r,
        Some(Err(e)) => return Err((Poison::Ragged, format!("not CSV: {e}"))),
        None => return Err((Poison::Ragged, "the value is empty".to_string())),
    };
    if records.next().is_some() {
        return Err((
            Poison::Ragged,
            "the value holds more than one CSV line".to_string(),
        ));
    }
    if record.len() != columns.len() {
        return Err((
            Poison::Ragged,
            format!(
                "{} fields; the topic's CSV format has {} ({}{})",
                record.len(),
                columns.len(),
                columns[..columns.len().min(3)].join(", "),
                if columns.len() > 3 { ", ..." } else { "" }
            ),
        ));
    }
    fields.extend(record.iter().map(str::to_string));
    Ok(())
}

pub(super) fn decode_json(
    text: &str,
    columns: &[String],
    fields: &mut Vec<String>,
) -> Result<(), (Poison, String)> {
    let object: HashMap<&str, &RawValue> = serde_json::from_str(text)
        .map_err(|e| (Poison::Json, format!("not a JSON object: {e}")))?;
    for c in columns {
        let raw = object.get(c.as_str()).copied().or_else(|| {
            object
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(c))
                .map(|(_, v)| *v)
        });
        let value = match raw.map(RawValue::get) {
            None | Some("null") => String::new(),
            Some(s) if s.starts_with('"') => serde_json::from_str::<String>(s)
                .map_err(|e| (Poison::Json, format!("`{c}`: {e}")))?,
            Some(s) if s.starts_with('{') || s.starts_with('[') => {
                return Err((
                    Poison::JsonType,
                    format!("`{c}` holds an object or array, not a value"),
                ));
            }
            // Numbers and booleans exactly as written: 1234567.89 stays 1234567.89.
            Some(s) => s.to_string(),
        };
        fields.push(value);
    }
    Ok(())
}
