//! # bondlake
//!
//! The pipeline library of bondlake: every rule and every step, with no Lambda types. The Lambda
//! functions and the `bondlake` CLI are thin edges over it.
//!
//! - [`contract`]: data contracts (`contracts/*.toml`), loaded and checked at run time.
//! - [`pipeline::process`]: one input object to Parquet parts, quarantine and manifest.
//! - [`store`]: object storage behind a trait (a local folder; S3 with the `aws` feature).
//! - [`processor`]: the csv-processor's handling of one announced object (route, hand-off,
//!   clean, publish), shared by the Lambda and `bondlake run`.
//! - [`events`]: the versioned pipeline events every stage publishes.
//! - [`kafka`]: msk-lander's core: Kafka records into the raw bucket, poison quarantined.
//! - [`notify`]: what the team is told: Slack messages, digests, e-mail text, dedupe.
//! - [`warehouse`]: the loader: each manifest into Redshift, PostgreSQL or DuckDB once, reconciled.
//! - [`synth`]: deterministic synthetic vendor files with known defects, for tests and benchmarks.

pub mod alloc;
#[cfg(feature = "aws")]
pub mod aws;
pub mod clean;
pub mod contract;
pub mod error;
pub mod events;
pub mod input;
pub mod kafka;
pub mod keyset;
pub mod manifest;
pub mod notify;
pub mod output;
pub mod parse;
pub mod pipeline;
pub mod processor;
pub mod reason;
pub mod route;
#[cfg(feature = "s3-server")]
pub mod s3_server;
pub mod schema;
pub mod store;
pub mod synth;
pub mod vars;
pub mod warehouse;
#[cfg(feature = "s3-server")]
pub mod webhook_server;
pub mod wide;

pub use contract::{Contract, load_dataset};
pub use error::{Error, FileError};
pub use manifest::{Manifest, Status};
pub use pipeline::{Options, Outcome, process};
pub use reason::Reason;
