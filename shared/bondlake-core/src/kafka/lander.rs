//! Landing a batch: per topic-partition, the span past the mark as one raw object, its poison
//! quarantined, its `landed` event published, then the mark moved.

use super::*;

/// A Kafka-fed dataset: its contract and the columns a record's value holds.
#[derive(Debug)]
struct Target {
    contract: Contract,
    vendor_columns: Vec<String>,
}

/// Lands batches of Kafka records (see the module's documentation).
#[derive(Debug)]
pub struct Lander {
    topics: Topics,
    targets: HashMap<String, Target>,
    raw_bucket: String,
}

/// What landing one topic-partition of a batch wrote.
#[derive(Debug, Clone)]
pub struct Landed {
    /// Its `landed` event (already published).
    pub event: PipelineEvent,
    /// The raw object's key, when any record landed.
    pub key: Option<String>,
    /// The quarantine object's key, when any record was poison.
    pub quarantine_key: Option<String>,
}

impl Lander {
    /// The topic `name` of the topic table, with its dataset's contract and the vendor columns
    /// its records carry, in order.
    pub fn topic_target(&self, name: &str) -> Result<(&Topic, &Contract, &[String]), LandError> {
        let topic = self.topics.get(name).ok_or_else(|| {
            LandError::Config(format!(
                "topic `{}` is not in the topic table (known: {})",
                name,
                self.topics
                    .all()
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        let target = self
            .targets
            .get(&topic.dataset)
            .ok_or_else(|| LandError::Config(format!("no contract for {}", topic.dataset)))?;
        let contract = &target.contract;
        Ok((topic, contract, &target.vendor_columns))
    }

    /// A lander for `topics`, with contracts from `contracts_dir` (or built in); `raw_bucket`
    /// names the raw bucket in events. Every dataset the table names must be a records-shaped
    /// contract declaring the [`LINEAGE`] columns.
    pub fn new(
        topics: Topics,
        contracts_dir: Option<&Path>,
        raw_bucket: &str,
    ) -> Result<Lander, LandError> {
        let mut targets = HashMap::new();
        for t in topics.all() {
            if targets.contains_key(&t.dataset) {
                continue;
            }
            let contract = contract::load_dataset(&t.dataset, contracts_dir)
                .map_err(|e| LandError::Config(format!("topic `{}`: {e}", t.name)))?;
            if contract.shape != Shape::Records {
                return Err(LandError::Config(format!(
                    "topic `{}`: dataset {} is wide (one row per date, a column per series); Kafka records carry one record each, so only records-shaped datasets can be fed",
                    t.name, t.dataset
                )));
            }
            let names: Vec<&str> = contract.columns.iter().map(|c| c.name.as_str()).collect();
            if let Some(missing) = LINEAGE.iter().find(|l| !names.contains(l)) {
                return Err(LandError::Config(format!(
                    "topic `{}`: contract {} does not declare the lineage column `{missing}` (see contracts/investor_holdings.toml)",
                    t.name, t.dataset
                )));
            }
            let vendor_columns = names
                .iter()
                .filter(|n| !LINEAGE.contains(n))
                .map(|n| n.to_string())
                .collect();
            targets.insert(
                t.dataset.clone(),
                Target {
                    contract,
                    vendor_columns,
                },
            );
        }
        Ok(Lander {
            topics,
            targets,
            raw_bucket: raw_bucket.to_string(),
        })
    }

    /// The topic table.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// The columns a record's value holds for `dataset`, in order (the contract's columns without
    /// the lineage columns).
    pub fn vendor_columns(&self, dataset: &str) -> Option<&[String]> {
        self.targets
            .get(dataset)
            .map(|t| t.vendor_columns.as_slice())
    }

    /// Lands one batch as the event source mapping delivers it: per topic-partition, the records
    /// past the partition's high-water mark (earlier ones are already landed, whatever the
    /// batch boundaries were then), as objects keyed by their first offset and created only if
    /// absent, then the `landed` event, then the mark. An empty batch writes nothing.
    pub fn land(
        &self,
        records: &[KafkaRecord],
        raw: &dyn ObjectStore,
        processed: &dyn ObjectStore,
        events: &dyn EventSink,
    ) -> Result<Vec<Landed>, LandError> {
        self.land_batch(records, raw, processed, events, Mode::Live)
    }

    /// Lands a batch the mapping once gave up on (from its on-failure destination): below the
    /// high-water mark, so the mark neither drops nor moves; an object that already holds these
    /// offsets (an attempt that got that far) is not written twice.
    pub fn replay(
        &self,
        records: &[KafkaRecord],
        raw: &dyn ObjectStore,
        processed: &dyn ObjectStore,
        events: &dyn EventSink,
    ) -> Result<Vec<Landed>, LandError> {
        self.land_batch(records, raw, processed, events, Mode::Replay)
    }

    fn land_batch(
        &self,
        records: &[KafkaRecord],
        raw: &dyn ObjectStore,
        processed: &dyn ObjectStore,
        events: &dyn EventSink,
        mode: Mode,
    ) -> Result<Vec<Landed>, LandError> {
        let mut groups: BTreeMap<(&str, i64), Vec<&KafkaRecord>> = BTreeMap::new();
        for r in records {
            groups
                .entry((r.topic.as_str(), r.partition))
                .or_default()
                .push(r);
        }
        let mut out = Vec::with_capacity(groups.len());
        for ((topic, partition), mut group) in groups {
            group.sort_by_key(|r| r.offset);
            // The mapping never repeats an offset in a batch; if it did, the record is the same.
            group.dedup_by_key(|r| r.offset);
            out.extend(self.land_group(topic, partition, &group, raw, processed, events, mode)?);
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn land_group(
        &self,
        topic: &str,
        partition: i64,
        group: &[&KafkaRecord],
        raw: &dyn ObjectStore,
        processed: &dyn ObjectStore,
        events: &dyn EventSink,
        mode: Mode,
    ) -> Result<Vec<Landed>, LandError> {
        let mark_key = format!("{MARKS_PREFIX}{}/p{partition}.json", sanitize(topic));
        let mark = match mode {
            Mode::Live => read_mark(processed, &mark_key)?,
            Mode::Replay => None,
        };
        let mut todo: Vec<&KafkaRecord> = group
            .iter()
            .copied()
            .filter(|r| mark.as_ref().is_none_or(|m| r.offset > m.last_offset))
            .collect();
        if todo.len() < group.len() {
            tracing::info!(
                topic,
                partition,
                skipped = group.len() - todo.len(),
                "records at or below the high-water mark: already landed"
            );
        }
        let mut out = Vec::new();
        let mut high: Option<i64> = None;
        while let Some(first) = todo.first().map(|r| r.offset) {
            let started = Instant::now();
            let span = self.build(topic, partition, &todo)?;
            // The raw object claims the span; with no good record, the quarantine object does.
            let (claim, rest) = match (&span.rows, &span.poison) {
                (Some(rows), poison) => (
                    (raw, span.key.as_str(), rows),
                    poison
                        .as_ref()
                        .map(|p| (processed, span.quarantine_key.as_str(), p)),
                ),
                (None, Some(poison)) => ((processed, span.quarantine_key.as_str(), poison), None),
                (None, None) => {
                    return Err(LandError::Config("an empty topic-partition span".into()));
                }
            };
            let (store, key, bytes) = claim;
            let last = if store
                .put_if(key, bytes, Precondition::Absent)
                .map_err(|e| storage(key, store, e))?
            {
                if let Some((store, key, bytes)) = rest {
                    // Written by another attempt only if it held the same records: same bytes.
                    store
                        .put_if(key, bytes, Precondition::Absent)
                        .map_err(|e| storage(key, store, e))?;
                }
                todo.last().map_or(first, |r| r.offset)
            } else {
                // An earlier attempt, cut otherwise, landed a span from this offset: it ends
                // where its objects' last record does. Its records are told again (the
                // notifier drops a notice it has sent), the rest land after it.
                let end = span_end(raw, processed, &span, self.offset_column(topic))?;
                if end < first {
                    return Err(storage(
                        key,
                        store,
                        io::Error::other(format!(
                            "the object for offsets from {first} holds only earlier offsets (to {end})"
                        )),
                    ));
                }
                tracing::info!(
                    topic,
                    partition,
                    first,
                    end,
                    "span landed by an earlier attempt"
                );
                todo.retain(|r| r.offset <= end);
                end
            };
            let told: Vec<&KafkaRecord> =
                todo.iter().copied().filter(|r| r.offset <= last).collect();
            let mut landed = if told.len() == span.records {
                span
            } else {
                self.build(topic, partition, &told)?
            };
            landed.event.duration_ms = started.elapsed().as_millis() as u64;
            if landed.poison.is_some() {
                landed.event.quarantine = Some(processed.locate(&landed.quarantine_key));
            }
            events
                .publish(&landed.event)
                .map_err(|source| LandError::Publish {
                    location: landed.event.source.key.clone(),
                    source,
                })?;
            out.push(Landed {
                event: landed.event,
                key: landed.rows.map(|_| landed.key),
                quarantine_key: landed.poison.map(|_| landed.quarantine_key),
            });
            high = Some(last);
            todo = group
                .iter()
                .copied()
                .filter(|r| {
                    r.offset > last && mark.as_ref().is_none_or(|m| r.offset > m.last_offset)
                })
                .collect();
        }
        if let (Mode::Live, Some(high)) = (mode, high) {
            advance_mark(processed, &mark_key, mark.as_ref(), topic, partition, high)?;
        }
        Ok(out)
    }

    /// Where `_kafka_offset` sits in a topic's raw objects.
    fn offset_column(&self, topic: &str) -> Option<usize> {
        let dataset = &self.topics.get(topic)?.dataset;
        Some(self.targets.get(dataset)?.vendor_columns.len() + 2)
    }

    /// The objects one span of records makes (not written).
    fn build(
        &self,
        topic: &str,
        partition: i64,
        group: &[&KafkaRecord],
    ) -> Result<Span, LandError> {
        let (first, last) = match (group.first(), group.last()) {
            (Some(f), Some(l)) => (f.offset, l.offset),
            _ => return Err(LandError::Config("an empty topic-partition group".into())),
        };
        let entry = self.topics.get(topic);
        let target = entry.and_then(|t| self.targets.get(&t.dataset));
        let dataset = entry.map_or("_unrouted", |t| t.dataset.as_str());
        let safe_topic = sanitize(topic);
        // Keyed by the first offset only: a retried batch cut elsewhere claims the same key.
        let span = format!("p{partition}/{first:020}.csv.gz");
        let date = group[0].timestamp_ms.div_euclid(86_400_000);
        let key = format!(
            "{RAW_PREFIX}{dataset}/{}/{safe_topic}/{span}",
            crate::parse::format_date(date as i32)
        );
        let quarantine_key = format!("quarantine/kafka/{dataset}/{safe_topic}/{span}");

        let mut rows = csv_gz();
        let mut poison = csv_gz();
        let memory = |e: csv::Error| LandError::Config(format!("writing CSV in memory: {e}"));
        poison.write_record(QUARANTINE_HEADER).map_err(memory)?;
        if let Some(target) = target {
            let header = target
                .vendor_columns
                .iter()
                .map(String::as_str)
                .chain(LINEAGE);
            rows.write_record(header).map_err(memory)?;
        }
        let mut landed = 0u64;
        let mut reasons: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut fields: Vec<String> = Vec::new();
        for r in group {
            let decoded = match (entry, target, &r.malformed) {
                (_, _, Some(why)) => Err((Poison::Malformed, why.clone())),
                (Some(t), Some(target), None) => {
                    decode(r, t.format, &target.vendor_columns, &mut fields)
                }
                _ => Err((
                    Poison::UnknownTopic,
                    format!("topic `{topic}` is not in the topic table"),
                )),
            };
            match decoded {
                Ok(()) => {
                    fields.push(r.topic.clone());
                    fields.push(r.partition.to_string());
                    fields.push(r.offset.to_string());
                    fields.push(r.timestamp_ms.to_string());
                    fields.push(headers_json(&r.headers));
                    rows.write_record(&fields).map_err(memory)?;
                    landed += 1;
                }
                Err((reason, detail)) => {
                    *reasons.entry(reason.code()).or_default() += 1;
                    poison
                        .write_record([
                            r.topic.as_str(),
                            &r.partition.to_string(),
                            &r.offset.to_string(),
                            &r.timestamp_ms.to_string(),
                            reason.code(),
                            &detail,
                            r.value.as_deref().unwrap_or(""),
                        ])
                        .map_err(memory)?;
                }
            }
        }
        let rejected = group.len() as u64 - landed;
        let poison = if rejected > 0 {
            Some(finish(poison, &quarantine_key)?)
        } else {
            None
        };
        let rows = if landed > 0 {
            Some(finish(rows, &key)?)
        } else {
            None
        };
        let mut source = SourceRef {
            bucket: self.raw_bucket.clone(),
            key: key.clone(),
            ..Default::default()
        };
        if let Some(bytes) = &rows {
            source.etag = format!("sha256:{}", hex::encode(&Sha256::digest(bytes)[..16]));
            source.bytes = bytes.len() as u64;
        }
        let event = PipelineEvent {
            dataset: entry.map(|t| t.dataset.clone()),
            rows_read: group.len() as u64,
            rows_ok: landed,
            rows_rejected: rejected,
            top_reasons: ReasonCount::top(reasons),
            ..PipelineEvent::new(
                Outcome::Landed {
                    kafka: KafkaInfo {
                        topic: topic.to_string(),
                        partition,
                        first_offset: first,
                        last_offset: last,
                    },
                },
                STAGE,
                source,
            )
        };
        Ok(Span {
            key,
            quarantine_key,
            rows,
            poison,
            event,
            records: group.len(),
        })
    }
}

/// How a batch is landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// As the mapping delivers it: the partition's high-water mark filters and then moves.
    Live,
    /// A batch the mapping gave up on: below the mark, which stays.
    Replay,
}

/// One span of a partition's records, as objects not yet written.
struct Span {
    key: String,
    quarantine_key: String,
    rows: Option<Vec<u8>>,
    poison: Option<Vec<u8>>,
    event: PipelineEvent,
    records: usize,
}

/// The quarantine's columns.
const QUARANTINE_HEADER: [&str; 7] = [
    "topic",
    "partition",
    "offset",
    "timestamp_ms",
    "reason",
    "detail",
    "value_base64",
];

/// The last offset the objects of an already-landed span hold (its raw object's last
/// `_kafka_offset`, its quarantine's last offset, whichever is later).
fn span_end(
    raw: &dyn ObjectStore,
    processed: &dyn ObjectStore,
    span: &Span,
    offset_column: Option<usize>,
) -> Result<i64, LandError> {
    let mut end = None;
    for (store, key, column) in [
        (raw, span.key.as_str(), offset_column),
        (processed, span.quarantine_key.as_str(), Some(2)),
    ] {
        let Some(column) = column else { continue };
        let object = match store.get(key, None) {
            Ok(o) => o,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(storage(key, store, e)),
        };
        let mut reader = csv::Reader::from_reader(flate2::read::MultiGzDecoder::new(object.body));
        for record in reader.records() {
            let record = record.map_err(|e| storage(key, store, io::Error::other(e)))?;
            if let Some(offset) = record.get(column).and_then(|o| o.parse::<i64>().ok()) {
                end = end.max(Some(offset));
            }
        }
    }
    end.ok_or_else(|| {
        storage(
            &span.key,
            raw,
            io::Error::other("another writer claimed this span, but its objects hold no offsets"),
        )
    })
}

/// A CSV writer into a gzip stream whose bytes depend only on what is written (gzip's header
/// carries no time or name here).
fn csv_gz() -> csv::Writer<GzEncoder<Vec<u8>>> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(GzEncoder::new(Vec::new(), Compression::default()))
}

fn finish(w: csv::Writer<GzEncoder<Vec<u8>>>, key: &str) -> Result<Vec<u8>, LandError> {
    let memory = |e: io::Error| LandError::Config(format!("{key}: compressing in memory: {e}"));
    w.into_inner()
        .map_err(|e| memory(e.into_error()))?
        .finish()
        .map_err(memory)
}
