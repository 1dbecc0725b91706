//! S3 from the CLI: `bondlake s3-server` (a folder served over the S3 protocol on 127.0.0.1) and
//! the `s3://` inputs and outputs of `bondlake process`, through the same adapter as the Lambda.

use bondlake_aws::{S3Options, S3Store};
use bondlake_testkit::s3_server::{self, S3Server};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct ServerArgs {
    /// Folder to serve; each sub-folder is a bucket.
    #[arg(long, default_value = "bondlake-s3")]
    root: PathBuf,
    /// Address to listen on (loopback only: the keys are public; 9000 is cargo lambda's).
    #[arg(long, default_value = "127.0.0.1:9400")]
    addr: String,
    /// Buckets to create.
    #[arg(long = "bucket")]
    buckets: Vec<String>,
}

/// `s3://bucket/key` → (bucket, key).
pub fn split_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("s3://")?;
    Some(rest.split_once('/').unwrap_or((rest, "")))
}

/// A Tokio runtime and an S3 client, alive as long as the stores made from it.
pub struct Session {
    runtime: tokio::runtime::Runtime,
    client: aws_sdk_s3::Client,
}

impl Session {
    /// A client for `endpoint` (an S3-protocol server, path-style; keys from
    /// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or `bondlake s3-server`'s), or for AWS with the
    /// usual credential chain when `None`.
    pub fn connect(endpoint: Option<&str>) -> Result<Session, String> {
        // One I/O thread: the engine has the cores (and every thread costs an allocator arena).
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let client = match endpoint {
            Some(url) => {
                let key = |name: &str, default: &str| {
                    std::env::var(name).unwrap_or_else(|_| default.to_string())
                };
                s3_server::local_client(
                    url,
                    &key("AWS_ACCESS_KEY_ID", s3_server::ACCESS_KEY),
                    &key("AWS_SECRET_ACCESS_KEY", s3_server::SECRET_KEY),
                )
            }
            // As the functions build theirs: AWS_ENDPOINT_URL_S3 and S3_FORCE_PATH_STYLE point
            // it at an S3-protocol server, so an EMR step's exact command can be tried here.
            None => {
                let sdk = runtime.block_on(aws_config::load_defaults(
                    aws_config::BehaviorVersion::latest(),
                ));
                bondlake_aws::s3_client(&sdk)
            }
        };
        Ok(Session { runtime, client })
    }

    /// A session when `needed` (some path is `s3://`), else none.
    pub fn connect_if_needed(
        needed: bool,
        endpoint: Option<&str>,
    ) -> Result<Option<Session>, String> {
        needed.then(|| Session::connect(endpoint)).transpose()
    }

    /// The pipeline-events topic `topic_arn` through SNS (AWS's credential chain).
    pub fn events(
        &self,
        topic_arn: &str,
    ) -> Result<std::sync::Arc<dyn bondlake_core::events::EventSink>, String> {
        let sdk = self.runtime.block_on(aws_config::load_defaults(
            aws_config::BehaviorVersion::latest(),
        ));
        Ok(bondlake_aws::pipeline_events(
            &sdk,
            topic_arn,
            self.runtime.handle().clone(),
        ))
    }

    /// One bucket as a store.
    pub fn store(&self, bucket: &str) -> S3Store {
        S3Store::new(
            self.client.clone(),
            bucket,
            self.runtime.handle().clone(),
            S3Options::default(),
        )
    }
}

pub fn serve(a: ServerArgs) -> Result<ExitCode, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let server = S3Server::start(&a.root, &a.addr, runtime.handle())
        .map_err(|e| format!("{}: {e}", a.addr))?;
    for b in &a.buckets {
        server
            .create_bucket(b)
            .map_err(|e| format!("bucket {b}: {e}"))?;
    }
    println!(
        "serving {} at {} (Ctrl-C to stop)\n\n  export AWS_ENDPOINT_URL_S3={} S3_FORCE_PATH_STYLE=true AWS_REGION=us-east-1 \\\n    AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={}",
        a.root.display(),
        server.endpoint(),
        server.endpoint(),
        s3_server::ACCESS_KEY,
        s3_server::SECRET_KEY
    );
    loop {
        std::thread::park();
    }
}
