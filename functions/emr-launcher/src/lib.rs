//! emr-launcher's handler, as a library: the Lambda's `main` and `bondlake run` call the same
//! code.

pub mod handler;
