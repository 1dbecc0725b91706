//! A Kafka producer simulator: a vendor CSV file as the records a producer would publish to a
//! topic, for tests, the fuzzer and `bondlake feed`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bondlake_core::kafka::{Format, KafkaRecord, LandError, Lander};
use std::collections::BTreeMap;
use std::io;

/// How [`records_from_csv`] makes Kafka-style records of a vendor file.
#[derive(Debug, Clone)]
pub struct Feed {
    /// The topic the records are "published" to.
    pub topic: String,
    /// Records are spread over this many partitions by the hash of their dataset key, as a
    /// producer keyed on it would.
    pub partitions: u32,
    /// The first offset of each partition (missing ones start at 0).
    pub start_offsets: BTreeMap<i64, i64>,
    /// Every record's timestamp (a fixed one makes the same file yield the same batch).
    pub timestamp_ms: i64,
    /// Headers on every record.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Turns a vendor CSV file (with its header; gzip or plain) into the records a producer would
/// publish to `feed.topic`: each record's vendor columns, in the contract's order, as the topic's
/// format writes them, with the offsets each partition would give them. Columns the file lacks
/// are empty; columns the contract does not know are left out.
pub fn records_from_csv(
    lander: &Lander,
    feed: &Feed,
    input: impl io::Read + Send + 'static,
) -> Result<Vec<KafkaRecord>, LandError> {
    let (topic, contract, vendor_columns) = lander.topic_target(&feed.topic)?;
    let profile = contract.profile(None).map_err(LandError::Config)?;
    let bad = |e: csv::Error| LandError::Config(format!("the input is not CSV: {e}"));
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(
        bondlake_core::input::open(input, &bondlake_core::input::Limits::default())
            .map_err(|e| LandError::Config(e.to_string()))?,
    );
    let header = reader.byte_headers().map_err(bad)?.clone();
    // Input field → vendor column position.
    let positions: Vec<Option<usize>> = vendor_columns
        .iter()
        .map(|name| {
            header.iter().position(|h| {
                let h = String::from_utf8_lossy(h);
                contract
                    .column_for_header(
                        profile,
                        h.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}'),
                    )
                    .is_some_and(|i| contract.columns[i].name == *name)
            })
        })
        .collect();
    let key_positions: Vec<usize> = contract
        .key
        .iter()
        .filter_map(|&k| {
            vendor_columns
                .iter()
                .position(|n| *n == contract.columns[k].name)
        })
        .collect();
    let mut next = feed.start_offsets.clone();
    let mut out = Vec::new();
    let partitions = feed.partitions.max(1);
    // Bytes as the file holds them: a producer publishes what it has, and a record that is not
    // UTF-8 or has the wrong width reaches the lander as such (and is quarantined there).
    for record in reader.byte_records() {
        let record = record.map_err(bad)?;
        let fields: Vec<&[u8]> = if record.len() == header.len() {
            positions
                .iter()
                .map(|p| p.and_then(|i| record.get(i)).unwrap_or(b""))
                .collect()
        } else {
            record.iter().collect()
        };
        let value = match topic.format {
            Format::Csv => {
                let mut w = csv::WriterBuilder::new()
                    .terminator(csv::Terminator::Any(b'\n'))
                    .from_writer(Vec::new());
                w.write_record(&fields).map_err(bad)?;
                let mut line = w
                    .into_inner()
                    .map_err(|e| LandError::Config(e.to_string()))?;
                line.pop();
                line
            }
            Format::Json => {
                let object: serde_json::Map<String, serde_json::Value> = vendor_columns
                    .iter()
                    .zip(&fields)
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(k, v)| {
                        let text = String::from_utf8_lossy(v).into_owned();
                        (k.clone(), serde_json::Value::String(text))
                    })
                    .collect();
                serde_json::to_vec(&object).unwrap_or_default()
            }
        };
        let mut key = Vec::new();
        for &k in &key_positions {
            key.extend_from_slice(fields.get(k).map_or(&b""[..], |f| f.trim_ascii()));
            key.push(0x1f);
        }
        let partition = (twox_hash::XxHash3_64::oneshot(&key) % u64::from(partitions)) as i64;
        let offset = next.entry(partition).or_insert(0);
        out.push(KafkaRecord {
            topic: feed.topic.clone(),
            partition,
            offset: *offset,
            timestamp_ms: feed.timestamp_ms,
            value: Some(BASE64.encode(value)),
            headers: feed.headers.clone(),
            malformed: None,
        });
        *offset += 1;
    }
    Ok(out)
}
