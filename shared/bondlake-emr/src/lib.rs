//! The EMR launcher's backends ([`bondlake_core::launch::Backend`]): a transient cluster per
//! hand-off ([`TransientCluster`], `RunJobFlow`, shaped by [`ClusterShape`], whose defaults are
//! the seed's 5-node cluster), or steps added to a running cluster ([`ClusterSteps`],
//! `AddJobFlowSteps`). Both run the same step ([`StepCommand`]) from the artifacts bucket's
//! bundle: `bondlake handoff --request s3://…` (csv-processor's engine) for a hand-off, and for a
//! backfill `spark-submit backfill.py`, which spreads the objects over the executors, each run by
//! the same binary; for the weekly job `spark-submit weekly_trends.py`, on a cluster whose Spark
//! keeps its Hive tables in the Glue Data Catalog ([`glue_catalog`]).
//!
//! Errors are classified once, by the API's error code and HTTP status ([`disposition`]):
//! throttling and 5xx are retried; access denied and a request EMR refuses as made are
//! configuration, for a person. They block on a Tokio runtime handle, like bondlake-aws.

use aws_sdk_emr::Client;
use aws_sdk_emr::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_emr::types::{
    ActionOnFailure, Application, AutoTerminationPolicy, Configuration, HadoopJarStepConfig,
    InstanceGroupConfig, InstanceRoleType, JobFlowInstancesConfig, MarketType, StepConfig, Tag,
};
use bondlake_core::failure::HandleError;
use bondlake_core::launch::{Backend, Job, Submission, Work};
use tokio::runtime::Handle;

/// The transient cluster's shape. The defaults are the cluster the seed system ran on: one
/// primary m5.xlarge and four core c5.xlarge, on demand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterShape {
    /// The EMR release, e.g. `emr-7.13.0` (Spark 3.5.6; Amazon Linux 2023, glibc 2.34).
    pub release_label: String,
    /// The primary node's instance type.
    pub primary_type: String,
    /// The core nodes' instance type.
    pub core_type: String,
    /// How many core nodes.
    pub core_count: i32,
    /// Core nodes on Spot (the primary stays on demand, so a Spot loss does not end the cluster).
    pub spot: bool,
    /// The cluster ends after this many idle seconds whatever happens (auto-termination), so a
    /// stuck cluster does not bill for ever.
    pub idle_timeout_seconds: i64,
    /// Subnets the cluster may start in (one is chosen by EMR).
    pub subnet_ids: Vec<String>,
    /// The EMR service role.
    pub service_role: String,
    /// The EC2 instance profile of the nodes.
    pub instance_profile: String,
    /// Where EMR writes the cluster's logs (`s3://logs-bucket/emr/`).
    pub log_uri: String,
}

impl Default for ClusterShape {
    fn default() -> Self {
        ClusterShape {
            release_label: "emr-7.13.0".into(),
            primary_type: "m5.xlarge".into(),
            core_type: "c5.xlarge".into(),
            core_count: 4,
            spot: false,
            idle_timeout_seconds: 3600,
            subnet_ids: Vec::new(),
            service_role: "EMR_DefaultRole".into(),
            instance_profile: "EMR_EC2_DefaultRole".into(),
            log_uri: String::new(),
        }
    }
}

/// The bundle `tools/publish-emr-artifacts.sh` publishes: `bondlake` (x86_64, built against
/// glibc 2.17), the `libduckdb.so` it links, `contracts/`, `backfill.py` and `weekly_trends.py`,
/// flat.
pub const BUNDLE: &str = "bondlake-emr.tar.gz";

/// The step every backend submits: fetch the bundle from the artifacts bucket, then run
/// `bondlake handoff` on a hand-off's request, or the Spark driver on a backfill's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepCommand {
    /// `s3://artifacts-bucket/bondlake/`, where [`BUNDLE`] is.
    pub artifacts: String,
    /// The pipeline-events topic each object's `processed` event goes to.
    pub events_topic_arn: String,
}

impl StepCommand {
    /// The step's arguments for `command-runner.jar`: one shell line, so that a failure at any
    /// part fails the step (and its log says which).
    pub fn args(&self, job: &Job) -> Vec<String> {
        let artifacts = self.artifacts.trim_end_matches('/');
        let dir = format!("/mnt/tmp/{}", job.name);
        let request = shell_word(&job.request_location);
        let topic = shell_word(&self.events_topic_arn);
        let fetch = format!(
            "set -euo pipefail; mkdir -p {dir}; \
             aws s3 cp --only-show-errors {artifacts}/{BUNDLE} {dir}/{BUNDLE}; \
             tar -xzf {dir}/{BUNDLE} -C {dir}; "
        );
        let run = match &job.work {
            Work::Handoff(_) => format!(
                "LD_LIBRARY_PATH={dir} exec {dir}/bondlake handoff --request {request} \
                 --contracts {dir}/contracts --events-topic-arn {topic}"
            ),
            // YARN unpacks the bundle into each executor's folder as ./bondlake; one task per
            // object, two cores each (the binary's --threads), so a node runs as many objects
            // at once as it has pairs of cores.
            Work::Backfill(_) => format!(
                "exec spark-submit --master yarn --deploy-mode client \
                 --archives {artifacts}/{BUNDLE}#bondlake \
                 --conf spark.task.cpus=2 --conf spark.executor.cores=2 \
                 --conf spark.executor.memory=1g --conf spark.executor.memoryOverhead=1g \
                 --conf spark.task.maxFailures=2 \
                 {dir}/backfill.py --request {request} --bondlake-dir {dir} --events-topic-arn {topic}"
            ),
            // The driver reads the request and writes the trends, the Hive table (the cluster's
            // metastore: Glue's, see `glue_catalog`) and last the result; the features are
            // computed on the executors.
            Work::Weekly(_) => {
                let processed = job
                    .request_location
                    .strip_suffix(&job.request_key)
                    .unwrap_or(&job.request_location)
                    .trim_end_matches('/');
                format!(
                    "exec spark-submit --master yarn --deploy-mode client \
                     {dir}/weekly_trends.py --processed {} --request {} --contracts {dir}/contracts",
                    shell_word(processed),
                    shell_word(&job.request_key)
                )
            }
        };
        vec!["bash".into(), "-c".into(), fetch + &run]
    }

    fn step(&self, job: &Job, on_failure: ActionOnFailure) -> StepConfig {
        let jar = HadoopJarStepConfig::builder()
            .jar("command-runner.jar")
            .set_args(Some(self.args(job)))
            .build();
        StepConfig::builder()
            .name(&job.name)
            .action_on_failure(on_failure)
            .hadoop_jar_step(jar)
            .build()
    }
}

/// Spark's Hive metastore on the cluster: the Glue Data Catalog (EMR's `spark-hive-site`
/// classification), so the weekly job's ORC table outlives the transient cluster and Athena or
/// another cluster reads it. A cluster the steps backend adds to needs the same configuration.
pub fn glue_catalog() -> Configuration {
    Configuration::builder()
        .classification("spark-hive-site")
        .properties(
            "hive.metastore.client.factory.class",
            "com.amazonaws.glue.catalog.metastore.AWSGlueDataCatalogHiveClientFactory",
        )
        .build()
}

/// A word as the shell reads it: the keys bondlake writes have no quotes, but a vendor's key may.
fn shell_word(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Whether an EMR API error may pass on a retry: throttling, 5xx, no response at all. Anything
/// else (access denied, validation, an invalid request) is the request as made, for a person.
pub fn disposition(code: Option<&str>, status: Option<u16>) -> bool {
    matches!(
        (code, status),
        (
            Some(
                "ThrottlingException"
                    | "Throttling"
                    | "RequestLimitExceeded"
                    | "InternalServerException"
                    | "InternalServerError"
                    | "ServiceUnavailable"
            ),
            _
        ) | (_, Some(429 | 500..=599))
            | (_, None)
    )
}

fn emr_error<E>(doing: &str, e: SdkError<E>) -> HandleError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    let retry = disposition(e.code(), status);
    let message = format!("EMR {doing}: {}", DisplayErrorContext(&e));
    if retry {
        HandleError::Retryable(message)
    } else {
        HandleError::Config(message)
    }
}

fn tags(job: &Job) -> Vec<Tag> {
    [
        ("bondlake:event_id", job.handoff_event_id.clone()),
        ("bondlake:attempt", job.attempt.to_string()),
        ("bondlake:work", job.work.kind().to_string()),
    ]
    .into_iter()
    .chain(
        job.work
            .dataset()
            .map(|d| ("bondlake:dataset", d.to_string())),
    )
    .map(|(k, v)| Tag::builder().key(k).value(v).build())
    .collect()
}

/// A cluster per hand-off, ended by its own step (or by auto-termination when idle).
pub struct TransientCluster {
    client: Client,
    handle: Handle,
    shape: ClusterShape,
    step: StepCommand,
}

impl TransientCluster {
    /// A backend submitting through `client`.
    pub fn new(client: Client, handle: Handle, shape: ClusterShape, step: StepCommand) -> Self {
        TransientCluster {
            client,
            handle,
            shape,
            step,
        }
    }

    fn group(
        &self,
        role: InstanceRoleType,
        instance_type: &str,
        count: i32,
        market: MarketType,
    ) -> InstanceGroupConfig {
        InstanceGroupConfig::builder()
            .name(role.as_str().to_ascii_lowercase())
            .instance_role(role)
            .instance_type(instance_type)
            .instance_count(count)
            .market(market)
            .build()
    }
}

impl Backend for TransientCluster {
    fn kind(&self) -> &'static str {
        "transient_cluster"
    }

    fn submit(&self, job: &Job) -> Result<Submission, HandleError> {
        let s = &self.shape;
        let core_market = if s.spot {
            MarketType::Spot
        } else {
            MarketType::OnDemand
        };
        let instances = JobFlowInstancesConfig::builder()
            .instance_groups(self.group(
                InstanceRoleType::Master,
                &s.primary_type,
                1,
                MarketType::OnDemand,
            ))
            .instance_groups(self.group(
                InstanceRoleType::Core,
                &s.core_type,
                s.core_count,
                core_market,
            ))
            .set_ec2_subnet_ids((!s.subnet_ids.is_empty()).then(|| s.subnet_ids.clone()))
            .keep_job_flow_alive_when_no_steps(false)
            .termination_protected(false)
            .build();
        let request = self
            .client
            .run_job_flow()
            .name(&job.name)
            .release_label(&s.release_label)
            .set_log_uri((!s.log_uri.is_empty()).then(|| s.log_uri.clone()))
            .service_role(&s.service_role)
            .job_flow_role(&s.instance_profile)
            .instances(instances)
            .applications(Application::builder().name("Spark").build())
            .set_configurations(matches!(job.work, Work::Weekly(_)).then(|| vec![glue_catalog()]))
            .steps(self.step.step(job, ActionOnFailure::TerminateCluster))
            .auto_termination_policy(
                AutoTerminationPolicy::builder()
                    .idle_timeout(s.idle_timeout_seconds)
                    .build(),
            )
            .set_tags(Some(tags(job)))
            .visible_to_all_users(true);
        let out = self
            .handle
            .block_on(request.send())
            .map_err(|e| emr_error("RunJobFlow", e))?;
        let id = out.job_flow_id().unwrap_or_default().to_string();
        tracing::info!(cluster = %id, name = %job.name, "cluster started");
        Ok(Submission {
            logs: log_location(&s.log_uri, &id),
            id,
        })
    }

    fn find(&self, job: &Job) -> Result<Option<Submission>, HandleError> {
        // Clusters are listed newest first; a claim is at most days old (the hand-off
        // request's own lifecycle), so two days of clusters are enough to look through.
        let since = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86_400);
        let mut pages = self
            .client
            .list_clusters()
            .created_after(aws_sdk_emr::primitives::DateTime::from(since))
            .into_paginator()
            .send();
        while let Some(page) = self.handle.block_on(pages.next()) {
            let page = page.map_err(|e| emr_error("ListClusters", e))?;
            for c in page.clusters() {
                if c.name() == Some(job.name.as_str()) {
                    let id = c.id().unwrap_or_default().to_string();
                    return Ok(Some(Submission {
                        logs: log_location(&self.shape.log_uri, &id),
                        id,
                    }));
                }
            }
        }
        Ok(None)
    }
}

/// Steps added to a named running cluster (shared with other work: a failed step does not end
/// it).
pub struct ClusterSteps {
    client: Client,
    handle: Handle,
    cluster_id: String,
    log_uri: String,
    step: StepCommand,
}

impl ClusterSteps {
    /// A backend adding steps to `cluster_id`, whose logs go to `log_uri`.
    pub fn new(
        client: Client,
        handle: Handle,
        cluster_id: &str,
        log_uri: &str,
        step: StepCommand,
    ) -> Self {
        ClusterSteps {
            client,
            handle,
            cluster_id: cluster_id.to_string(),
            log_uri: log_uri.to_string(),
            step,
        }
    }
}

impl Backend for ClusterSteps {
    fn kind(&self) -> &'static str {
        "steps"
    }

    fn submit(&self, job: &Job) -> Result<Submission, HandleError> {
        let request = self
            .client
            .add_job_flow_steps()
            .job_flow_id(&self.cluster_id)
            .steps(self.step.step(job, ActionOnFailure::Continue));
        let out = self
            .handle
            .block_on(request.send())
            .map_err(|e| emr_error("AddJobFlowSteps", e))?;
        let step = out.step_ids().first().cloned().unwrap_or_default();
        Ok(Submission {
            id: format!("{}/{step}", self.cluster_id),
            logs: log_location(&self.log_uri, &self.cluster_id)
                .map(|l| format!("{l}steps/{step}/")),
        })
    }

    fn find(&self, job: &Job) -> Result<Option<Submission>, HandleError> {
        let mut pages = self
            .client
            .list_steps()
            .cluster_id(&self.cluster_id)
            .into_paginator()
            .send();
        while let Some(page) = self.handle.block_on(pages.next()) {
            let page = page.map_err(|e| emr_error("ListSteps", e))?;
            for s in page.steps() {
                if s.name() == Some(job.name.as_str()) {
                    let step = s.id().unwrap_or_default();
                    return Ok(Some(Submission {
                        id: format!("{}/{step}", self.cluster_id),
                        logs: None,
                    }));
                }
            }
        }
        Ok(None)
    }
}

/// `<log uri><cluster id>/`, where EMR writes a cluster's logs.
pub fn log_location(log_uri: &str, cluster_id: &str) -> Option<String> {
    (!log_uri.is_empty() && !cluster_id.is_empty())
        .then(|| format!("{}/{cluster_id}/", log_uri.trim_end_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_emr::operation::add_job_flow_steps::AddJobFlowStepsOutput;
    use aws_sdk_emr::operation::run_job_flow::{RunJobFlowError, RunJobFlowOutput};
    use aws_sdk_emr::types::error::InternalServerError;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use bondlake_core::manifest::SourceRef;
    use bondlake_core::processor::HandoffRequest;

    fn job() -> Job {
        Job {
            handoff_event_id: "5d0c0f1a9b7e3c21d4e8a6f0".into(),
            attempt: 2,
            name: "bondlake-5d0c0f1a9b7e3c21d4e8a6f0-a2".into(),
            request_key: "handoffs/investor_holdings/big.json".into(),
            request_location: "s3://processed/handoffs/investor_holdings/big.json".into(),
            work: Work::Handoff(HandoffRequest {
                handoff_version: 1,
                dataset: "investor_holdings".into(),
                profile: "standard".into(),
                contract_version: "1.1.0".into(),
                source: SourceRef {
                    bucket: "raw".into(),
                    key: "holdings/big.csv.gz".into(),
                    etag: "e1".into(),
                    bytes: 5 << 30,
                    ..Default::default()
                },
                reason: "size".into(),
                detail: "big".into(),
                manifest_key: "manifests/investor_holdings/big.json".into(),
                requested_at: "2026-11-25T22:15:09.410000Z".into(),
            }),
        }
    }

    fn backfill_job() -> Job {
        let request = bondlake_core::backfill::BackfillRequest::new(
            "raw",
            "holdings/",
            Some("2026-11-01"),
            Some("2026-11-30"),
            Some("investor_holdings"),
            "",
        )
        .expect("request");
        request_job(request.id(), request.key(), Work::Backfill(request))
    }

    /// The first attempt at a request stored at `key` in the processed bucket, as the launcher
    /// makes it.
    fn request_job(id: String, key: String, work: Work) -> Job {
        Job {
            name: bondlake_core::launch::job_name(&id, 1),
            handoff_event_id: id,
            attempt: 1,
            request_location: format!("s3://processed/{key}"),
            request_key: key,
            work,
        }
    }

    fn step() -> StepCommand {
        StepCommand {
            artifacts: "s3://artifacts/bondlake/".into(),
            events_topic_arn: "arn:aws:sns:us-east-1:123456789012:pipeline-events-dev".into(),
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn the_step_fetches_the_binary_and_runs_the_hand_off_on_its_request() {
        let args = step().args(&job());
        assert_eq!(args[..2], ["bash", "-c"]);
        let script = &args[2];
        for part in [
            "set -euo pipefail",
            "aws s3 cp --only-show-errors s3://artifacts/bondlake/bondlake-emr.tar.gz /mnt/tmp/bondlake-5d0c0f1a9b7e3c21d4e8a6f0-a2/bondlake-emr.tar.gz",
            "tar -xzf /mnt/tmp/bondlake-5d0c0f1a9b7e3c21d4e8a6f0-a2/bondlake-emr.tar.gz -C /mnt/tmp/bondlake-5d0c0f1a9b7e3c21d4e8a6f0-a2;",
            "LD_LIBRARY_PATH=/mnt/tmp/bondlake-5d0c0f1a9b7e3c21d4e8a6f0-a2 exec",
            "handoff --request 's3://processed/handoffs/investor_holdings/big.json'",
            "--contracts /mnt/tmp/bondlake-5d0c0f1a9b7e3c21d4e8a6f0-a2/contracts",
            "--events-topic-arn 'arn:aws:sns:us-east-1:123456789012:pipeline-events-dev'",
        ] {
            assert!(script.contains(part), "{part} in {script}");
        }
        assert!(!script.contains("spark-submit"), "{script}");
        let mut odd = job();
        odd.request_location = "s3://processed/handoffs/it's.json".into();
        assert!(step().args(&odd)[2].contains(r"'s3://processed/handoffs/it'\''s.json'"));
    }

    #[test]
    fn a_backfill_step_runs_the_spark_driver_with_the_bundle_on_every_executor() {
        let job = backfill_job();
        let script = &step().args(&job)[2];
        let dir = format!("/mnt/tmp/{}", job.name);
        for part in [
            "exec spark-submit --master yarn --deploy-mode client".to_string(),
            "--archives s3://artifacts/bondlake/bondlake-emr.tar.gz#bondlake".to_string(),
            "--conf spark.task.cpus=2".to_string(),
            format!(
                "{dir}/backfill.py --request 's3://processed/{}'",
                job.request_key
            ),
            format!("--bondlake-dir {dir}"),
            "--events-topic-arn 'arn:aws:sns:us-east-1:123456789012:pipeline-events-dev'".into(),
        ] {
            assert!(script.contains(&part), "{part} in {script}");
        }
        let tags: Vec<(String, String)> = tags(&job)
            .iter()
            .map(|t| (t.key().unwrap_or("").into(), t.value().unwrap_or("").into()))
            .collect();
        assert!(tags.contains(&("bondlake:work".into(), "backfill".into())));
        assert!(tags.contains(&("bondlake:event_id".into(), job.handoff_event_id.clone())));
    }

    fn weekly_job() -> Job {
        let request = bondlake_core::weekly::WeeklyRequest::new(
            "processed",
            "2026-12-05T06:00:00Z",
            "bondlake",
            "s3://processed/hive/bondlake.db",
            "",
        )
        .expect("request");
        request_job(request.id(), request.key(), Work::Weekly(request))
    }

    #[test]
    fn the_weekly_step_runs_the_trends_driver_on_a_cluster_whose_metastore_is_glue() {
        let job = weekly_job();
        let script = &step().args(&job)[2];
        let dir = format!("/mnt/tmp/{}", job.name);
        let want = format!(
            "exec spark-submit --master yarn --deploy-mode client {dir}/weekly_trends.py \
             --processed 's3://processed' --request '{}' --contracts {dir}/contracts",
            job.request_key
        );
        assert!(script.ends_with(&want), "{want} at the end of {script}");
        assert!(
            !script.contains("--archives"),
            "the driver alone needs the bundle"
        );
        let rule = mock!(Client::run_job_flow)
            .match_requests(|r| {
                let glue = r.configurations().iter().any(|c| {
                    c.classification() == Some("spark-hive-site")
                        && c.properties().and_then(|p| p.get("hive.metastore.client.factory.class"))
                            == Some(&"com.amazonaws.glue.catalog.metastore.AWSGlueDataCatalogHiveClientFactory".to_string())
                });
                glue && r.tags().iter().any(|t| {
                    t.key() == Some("bondlake:work") && t.value() == Some("weekly")
                })
            })
            .then_output(|| RunJobFlowOutput::builder().job_flow_id("j-WEEKLY").build());
        let client = mock_client!(aws_sdk_emr, [&rule]);
        let rt = runtime();
        let backend =
            TransientCluster::new(client, rt.handle().clone(), ClusterShape::default(), step());
        backend.submit(&job).expect("submitted");
        assert_eq!(rule.num_calls(), 1, "Glue's metastore, tagged weekly");
    }

    #[test]
    fn a_transient_cluster_has_the_seed_shape_its_name_tags_and_one_step() {
        let rule = mock!(Client::run_job_flow)
            .match_requests(|r| {
                let groups = r
                    .instances()
                    .map(|i| i.instance_groups())
                    .unwrap_or_default();
                let group = |role: InstanceRoleType| {
                    groups.iter().find(|g| g.instance_role() == Some(&role))
                };
                let primary = group(InstanceRoleType::Master);
                let core = group(InstanceRoleType::Core);
                let tags: Vec<(&str, &str)> = r
                    .tags()
                    .iter()
                    .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or("")))
                    .collect();
                let steps = r.steps();
                r.name() == Some("bondlake-5d0c0f1a9b7e3c21d4e8a6f0-a2")
                    && r.release_label() == Some("emr-7.13.0")
                    && primary.is_some_and(|g| {
                        g.instance_type() == Some("m5.xlarge") && g.instance_count() == Some(1)
                    })
                    && core.is_some_and(|g| {
                        g.instance_type() == Some("c5.xlarge")
                            && g.instance_count() == Some(4)
                            && g.market() == Some(&MarketType::Spot)
                    })
                    && r.instances().is_some_and(|i| {
                        i.keep_job_flow_alive_when_no_steps() == Some(false)
                            && i.ec2_subnet_ids() == ["subnet-0123456789abcdef0"]
                    })
                    && r.auto_termination_policy().and_then(|p| p.idle_timeout()) == Some(1800)
                    && r.service_role() == Some("bondlake-dev-emr-service")
                    && r.job_flow_role() == Some("bondlake-dev-emr-nodes")
                    && r.log_uri() == Some("s3://logs/emr/")
                    && tags.contains(&("bondlake:event_id", "5d0c0f1a9b7e3c21d4e8a6f0"))
                    && tags.contains(&("bondlake:attempt", "2"))
                    && r.configurations().is_empty()
                    && steps.len() == 1
                    && steps[0].name() == Some("bondlake-5d0c0f1a9b7e3c21d4e8a6f0-a2")
                    && steps[0].action_on_failure() == Some(&ActionOnFailure::TerminateCluster)
                    && steps[0]
                        .hadoop_jar_step()
                        .is_some_and(|j| j.jar() == Some("command-runner.jar"))
            })
            .then_output(|| {
                RunJobFlowOutput::builder()
                    .job_flow_id("j-2AXXXXXXGAPLF")
                    .build()
            });
        let client = mock_client!(aws_sdk_emr, [&rule]);
        let rt = runtime();
        let shape = ClusterShape {
            spot: true,
            idle_timeout_seconds: 1800,
            subnet_ids: vec!["subnet-0123456789abcdef0".into()],
            service_role: "bondlake-dev-emr-service".into(),
            instance_profile: "bondlake-dev-emr-nodes".into(),
            log_uri: "s3://logs/emr/".into(),
            ..ClusterShape::default()
        };
        let backend = TransientCluster::new(client, rt.handle().clone(), shape, step());
        let submitted = backend.submit(&job()).expect("submitted");
        assert_eq!(submitted.id, "j-2AXXXXXXGAPLF");
        assert_eq!(
            submitted.logs.as_deref(),
            Some("s3://logs/emr/j-2AXXXXXXGAPLF/")
        );
        assert_eq!(rule.num_calls(), 1, "the request had the shape asked for");
    }

    #[test]
    fn steps_go_to_the_named_cluster_and_do_not_end_it() {
        let rule = mock!(Client::add_job_flow_steps)
            .match_requests(|r| {
                r.job_flow_id() == Some("j-SHARED")
                    && r.steps().len() == 1
                    && r.steps()[0].name() == Some("bondlake-5d0c0f1a9b7e3c21d4e8a6f0-a2")
                    && r.steps()[0].action_on_failure() == Some(&ActionOnFailure::Continue)
            })
            .then_output(|| AddJobFlowStepsOutput::builder().step_ids("s-1ABC").build());
        let client = mock_client!(aws_sdk_emr, [&rule]);
        let rt = runtime();
        let backend = ClusterSteps::new(
            client,
            rt.handle().clone(),
            "j-SHARED",
            "s3://logs/emr",
            step(),
        );
        let submitted = backend.submit(&job()).expect("submitted");
        assert_eq!(submitted.id, "j-SHARED/s-1ABC");
        assert_eq!(
            submitted.logs.as_deref(),
            Some("s3://logs/emr/j-SHARED/steps/s-1ABC/")
        );
        assert_eq!(rule.num_calls(), 1);
    }

    #[test]
    fn throttling_and_5xx_are_retried_access_denied_and_validation_are_configuration() {
        assert!(disposition(Some("ThrottlingException"), Some(400)));
        assert!(disposition(Some("InternalServerException"), Some(500)));
        assert!(disposition(None, Some(503)));
        assert!(disposition(None, None), "no response at all");
        assert!(!disposition(Some("AccessDeniedException"), Some(400)));
        assert!(!disposition(Some("ValidationException"), Some(400)));
        assert!(!disposition(Some("InvalidRequestException"), Some(400)));
        // Through the SDK: a modelled 5xx error from RunJobFlow is retryable.
        let rule = mock!(Client::run_job_flow).then_error(|| {
            RunJobFlowError::InternalServerError(
                InternalServerError::builder().message("boom").build(),
            )
        });
        let client = mock_client!(aws_sdk_emr, RuleMode::MatchAny, [&rule]);
        let rt = runtime();
        let backend =
            TransientCluster::new(client, rt.handle().clone(), ClusterShape::default(), step());
        let e = backend.submit(&job()).expect_err("fails");
        assert!(e.to_string().contains("RunJobFlow"), "{e}");
    }
}
