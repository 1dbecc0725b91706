//! The msk-lander function as a library: its handler, which the Lambda binary (`main.rs`) and
//! the local runner (`bondlake run`, `bondlake demo`) both call, so a local run goes through the
//! code Lambda runs.

pub mod handler;
