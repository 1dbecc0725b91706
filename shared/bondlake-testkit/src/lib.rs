//! # bondlake-testkit
//!
//! What tests, benchmarks and the CLI's own tools need and production never does:
//!
//! - [`synth`]: deterministic synthetic vendor files with known defects.
//! - [`s3_server`]: an S3-protocol server on 127.0.0.1 (SigV4 checked, IAM grants enforced per
//!   role, faults injectable), over a local folder.
//! - [`webhook_server`]: a recording Slack webhook receiver.
//! - [`kafka_feed`]: a Kafka producer simulator (a vendor file as the records of a topic).
//!
//! No function depends on this crate outside its tests (`cargo tree -e normal -p csv-processor`).

pub mod kafka_feed;
pub mod s3_server;
pub mod synth;
pub mod webhook_server;
