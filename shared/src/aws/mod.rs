//! The AWS adapters (feature `aws`): S3 as an [`crate::store::ObjectStore`], SNS as an
//! [`crate::events::EventSink`]. They block on a Tokio runtime handle: call them from blocking
//! threads, never from inside an async task.

pub mod lambda;
pub mod s3;
#[cfg(feature = "secrets")]
pub mod secrets;
pub mod sns;

pub use s3::{S3Options, S3Store};
pub use sns::SnsSink;
#[cfg(feature = "slack")]
pub use sns::SnsText;
