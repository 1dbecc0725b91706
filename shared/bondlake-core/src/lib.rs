//! # bondlake-core
//!
//! The pipeline library of bondlake: every rule and every step, with no AWS SDK, no Lambda types
//! and no async runtime. The adapters to outside systems are their own crates (`bondlake-aws`,
//! `bondlake-lambda`, `bondlake-slack`, `bondlake-warehouse-*`); the Lambda functions and the
//! `bondlake` CLI are thin edges over them.
//!
//! - [`contract`]: data contracts (`contracts/*.toml`), loaded and checked at run time.
//! - [`pipeline::process`]: one input object to Parquet parts, quarantine and manifest.
//! - [`store`]: object storage behind a trait (a local folder here; S3 in `bondlake-aws`).
//! - [`processor`]: the csv-processor's handling of one announced object (route, hand-off,
//!   clean, publish), shared by the Lambda and `bondlake run`.
//! - [`events`]: the versioned pipeline events every stage publishes.
//! - [`kafka`]: msk-lander's core: Kafka records into the raw bucket, poison quarantined.
//! - [`notify`]: what the team is told: Slack messages, digests, e-mail text, dedupe.
//! - [`warehouse`]: the loader: each manifest into a warehouse once, reconciled (the backends are
//!   the `bondlake-warehouse-*` crates).
//! - [`launch`] and [`backfill`]: the EMR launcher's core: a hand-off or a backfill run once.
//! - [`weekly`]: the weekly job: trend features over each series' whole history.
//! - [`failure`]: the one error every stage returns at its edge, and whether to retry it.

pub mod alloc;
pub mod backfill;
pub mod clean;
pub mod contract;
mod dict_chunk;
pub mod error;
pub mod events;
pub mod failure;
pub mod input;
pub mod kafka;
pub mod keyset;
pub mod launch;
pub mod manifest;
pub mod notify;
pub mod output;
pub mod parse;
pub mod pipeline;
pub mod processor;
pub mod reason;
pub mod route;
pub mod schema;
pub mod stages;
pub mod store;
pub mod value;
pub mod vars;
pub mod warehouse;
pub mod weekly;
pub mod wide;

pub use contract::{Contract, load_dataset};
pub use error::{Error, FileError};
pub use manifest::{Manifest, Status};
pub use pipeline::{Options, Outcome, process};
pub use reason::Reason;
