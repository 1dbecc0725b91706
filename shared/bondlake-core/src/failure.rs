//! The error every stage returns at its edge (a Lambda handler, `bondlake run`), and the one
//! decision made from it ([`HandleError::disposition`]): deliver the event again, or hold it for a
//! person.

use crate::store::StorageKind;
use std::io;

/// What becomes of an event whose handling failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Deliver it again later (the queue's visibility timeout, Lambda's own retries): the
    /// failure may pass.
    Retry,
    /// Deliver it again at once, to a fresh invocation: it was never started.
    RetryNow,
    /// Retrying cannot help: keep it (the dead-letter queue, with its alarm) for a person, who
    /// fixes the configuration or the input and redrives it. Nothing is dropped.
    Hold,
}

/// Why an object could not be handled; [`HandleError::is_retryable`] splits retry from give-up.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// The event itself is wrong (another bucket, an undecodable key): retrying cannot help.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Storage or the topic failed; the same event may succeed later.
    #[error("{0}")]
    Retryable(String),
    /// A contract, route or setting is wrong: a person must fix it.
    #[error("configuration: {0}")]
    Config(String),
    /// Not started: it fits in a fresh invocation but not in what is left of this one (the files
    /// before it in the batch took the time). Back to the queue, unprocessed.
    #[error("deferred: {0}")]
    Deferred(String),
}

impl HandleError {
    /// Whether the event should be delivered again.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.disposition(),
            Disposition::Retry | Disposition::RetryNow
        )
    }

    /// A storage failure met while `doing`: retryable when its kind is
    /// ([`StorageKind::is_retryable`]), else configuration (access denied, no such bucket).
    pub fn storage(doing: impl std::fmt::Display, e: &io::Error) -> HandleError {
        if StorageKind::of(e).is_retryable() {
            HandleError::Retryable(format!("{doing}: {e}"))
        } else {
            HandleError::Config(format!("{doing}: {e}"))
        }
    }

    /// What to do with the event that failed so: the one decision every function makes from it.
    pub fn disposition(&self) -> Disposition {
        match self {
            HandleError::Retryable(_) => Disposition::Retry,
            HandleError::Deferred(_) => Disposition::RetryNow,
            HandleError::Config(_) | HandleError::InvalidInput(_) => Disposition::Hold,
        }
    }

    /// The Lambda `errorType`.
    pub fn error_type(&self) -> &'static str {
        match self {
            HandleError::InvalidInput(_) => "InvalidInput",
            HandleError::Retryable(_) => "Retryable",
            HandleError::Config(_) => "Configuration",
            HandleError::Deferred(_) => "Deferred",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{StorageError, Superseded};

    fn io(kind: StorageKind) -> io::Error {
        StorageError::new(kind, "GetObject s3://raw/k: …", None).into()
    }

    #[test]
    fn each_storage_kind_has_one_disposition() {
        let cases = [
            (StorageKind::Transient, Disposition::Retry, "Retryable"),
            (StorageKind::Denied, Disposition::Hold, "Configuration"),
            (StorageKind::NotFound, Disposition::Hold, "Configuration"),
        ];
        for (kind, disposition, error_type) in cases {
            let e = HandleError::storage("reading", &io(kind));
            assert_eq!(e.disposition(), disposition, "{kind:?}");
            assert_eq!(e.error_type(), error_type, "{kind:?}");
        }
        assert_eq!(
            HandleError::Deferred("later".into()).disposition(),
            Disposition::RetryNow
        );
        assert!(!HandleError::InvalidInput("x".into()).is_retryable());
    }

    #[test]
    fn the_kind_survives_the_io_error_and_plain_io_errors_are_classified() {
        for kind in [
            StorageKind::NotFound,
            StorageKind::Superseded,
            StorageKind::Denied,
            StorageKind::Transient,
        ] {
            assert_eq!(StorageKind::of(&io(kind)), kind);
        }
        let superseded = io::Error::other(Superseded {
            key: "k".into(),
            expected: "e".into(),
        });
        assert_eq!(StorageKind::of(&superseded), StorageKind::Superseded);
        let plain = |k| StorageKind::of(&io::Error::from(k));
        assert_eq!(plain(io::ErrorKind::NotFound), StorageKind::NotFound);
        assert_eq!(plain(io::ErrorKind::PermissionDenied), StorageKind::Denied);
        assert_eq!(plain(io::ErrorKind::InvalidInput), StorageKind::Denied);
        assert_eq!(plain(io::ErrorKind::TimedOut), StorageKind::Transient);
        assert_eq!(plain(io::ErrorKind::StorageFull), StorageKind::Transient);
    }
}
