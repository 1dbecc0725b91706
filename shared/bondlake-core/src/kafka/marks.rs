//! Each topic-partition's high-water mark, moved by conditional writes only.

use super::*;

/// A topic-partition's high-water mark as stored.
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
pub(super) struct Mark {
    pub(super) topic: String,
    pub(super) partition: i64,
    pub(super) last_offset: i64,
    /// The object's version, for the conditional write that moves it (not stored).
    #[serde(skip)]
    pub(super) etag: String,
}

pub(super) fn read_mark(store: &dyn ObjectStore, key: &str) -> Result<Option<Mark>, LandError> {
    let object = match store.get(key, None) {
        Ok(o) => o,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(storage(key, store, e)),
    };
    let mut text = Vec::new();
    let etag = object.etag.clone();
    let mut body = object.body;
    body.read_to_end(&mut text)
        .map_err(|e| storage(key, store, e))?;
    let mark: Mark = serde_json::from_slice(&text).map_err(|e| {
        LandError::Config(format!(
            "{}: not a high-water mark ({e}); fix or delete it",
            store.locate(key)
        ))
    })?;
    Ok(Some(Mark { etag, ..mark }))
}

/// Moves the mark to `high` with a conditional write: if another lander moved it meanwhile, the
/// mark is read again and kept when it is already as far.
pub(super) fn advance_mark(
    store: &dyn ObjectStore,
    key: &str,
    read: Option<&Mark>,
    topic: &str,
    partition: i64,
    high: i64,
) -> Result<(), LandError> {
    let mut current = read.cloned();
    for _ in 0..5 {
        if current.as_ref().is_some_and(|m| m.last_offset >= high) {
            return Ok(());
        }
        let mark = Mark {
            topic: topic.to_string(),
            partition,
            last_offset: high,
            etag: String::new(),
        };
        let bytes = serde_json::to_vec(&mark).map_err(|e| LandError::Config(e.to_string()))?;
        let condition = match &current {
            Some(m) => Precondition::Matches(&m.etag),
            None => Precondition::Absent,
        };
        if store
            .put_if(key, &bytes, condition)
            .map_err(|e| storage(key, store, e))?
        {
            return Ok(());
        }
        current = read_mark(store, key)?;
    }
    Err(storage(
        key,
        store,
        io::Error::other("the high-water mark kept moving under concurrent landers"),
    ))
}
