"""Checks template.yaml offline: SAM's own translator turns it into plain CloudFormation, and the
result must hold what the design promises (private processed bucket, queue with a dead-letter
queue and partial batch responses, least-privilege policies). Run by .ci/run after cfn-lint."""
import json
import os
import sys

from samtranslator.public.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


class Plugins:
    """No managed-policy lookups: the template names its policies inline."""

    def load(self):
        return {}


def main(path):
    with open(path) as f:
        template = yaml_parse(f.read())
    # The translator wants an uploaded artifact, as `sam package` would leave it.
    for res in template["Resources"].values():
        if res["Type"] == "AWS::Serverless::Function":
            res["Properties"]["CodeUri"] = "s3://bondlake-artifacts/csv-processor.zip"
    try:
        cfn = transform(template, {}, Plugins())
    except InvalidDocumentException as e:
        sys.exit("SAM translator: " + "; ".join(str(c) for c in e.causes))
    res = cfn["Resources"]
    by_type = {}
    for name, r in res.items():
        by_type.setdefault(r["Type"], []).append(name)

    def check(cond, message):
        if not cond:
            sys.exit("template: " + message)

    processed = res["ProcessedBucket"]["Properties"]
    check(all(processed["PublicAccessBlockConfiguration"].values()), "processed bucket must block public access")
    sse = processed["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    check(sse["SSEAlgorithm"] == "aws:kms", "processed bucket must use KMS")
    tls = json.dumps(res["ProcessedBucketPolicy"]["Properties"]["PolicyDocument"])
    check('"aws:SecureTransport": "false"' in tls, "processed bucket must deny non-TLS requests")
    queue = res["RawEventsQueue"]["Properties"]
    check("deadLetterTargetArn" in queue["RedrivePolicy"], "queue needs a dead-letter queue")
    mappings = [res[n]["Properties"] for n in by_type.get("AWS::Lambda::EventSourceMapping", [])]
    check(any(m.get("FunctionResponseTypes") == ["ReportBatchItemFailures"] for m in mappings),
          "the SQS mapping must report partial batch failures")
    fn = res["CsvProcessorFunction"]["Properties"]
    check(fn["Runtime"] == "provided.al2023" and fn["Architectures"] == ["arm64"], "runtime must be provided.al2023 on arm64")
    for role in ("CsvProcessorFunctionRole", "WarehouseLoaderFunctionRole", "MskLanderFunctionRole", "NotifierFunctionRole"):
        roles = json.dumps(res[role]["Properties"])
        check('"s3:*"' not in roles and '"Resource": "*"' not in roles, f"{role}: policies must name actions and resources")
    loader = res["WarehouseLoaderFunction"]["Properties"]
    check(loader["Runtime"] == "provided.al2023" and loader["Architectures"] == ["arm64"], "warehouse-loader must be provided.al2023 on arm64")
    env = loader["Environment"]["Variables"]
    check("REDSHIFT_WORKGROUP" in env and not any("PASSWORD" in k for k in env), "the loader authenticates by IAM, never a password")
    notifications = processed["NotificationConfiguration"]["QueueConfigurations"]
    check(any(r["Name"] == "prefix" and r["Value"] == "manifests/" for n in notifications for r in n["Filter"]["S3Key"]["Rules"]),
          "the processed bucket must announce manifests (and only them) to the loader's queue")
    check("deadLetterTargetArn" in res["ManifestEventsQueue"]["Properties"]["RedrivePolicy"], "the manifest queue needs a dead-letter queue")
    for name in ("MskLanderFunction", "NotifierFunction"):
        props = res[name]["Properties"]
        check(props["Runtime"] == "provided.al2023" and props["Architectures"] == ["arm64"], f"{name} must be provided.al2023 on arm64")
    check(res["MskLanderFunction"].get("Condition") == "HasMskCluster", "msk-lander exists only when a cluster is named")
    msk = [m for m in mappings if "Topics" in m]
    check(len(msk) == 1, "msk-lander needs one MSK event source mapping")
    msk = msk[0]
    check(msk["Topics"] == {"Ref": "MskTopics"} and msk["BatchSize"] == {"Ref": "MskBatchSize"}
          and msk["MaximumBatchingWindowInSeconds"] == {"Ref": "MskBatchingWindowSeconds"},
          "the MSK mapping takes its topics, batch size and window from parameters")
    check("OnFailure" in msk.get("DestinationConfig", {}), "failed Kafka batches need an on-failure destination")
    notify = [m for m in mappings if m.get("MaximumBatchingWindowInSeconds") == {"Ref": "DigestWindowSeconds"}]
    check(len(notify) == 1 and notify[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"],
          "the notifier's queue mapping: the digest window as its batching window, partial batch failures")
    check("deadLetterTargetArn" in res["NotifyQueue"]["Properties"]["RedrivePolicy"], "the notify queue needs a dead-letter queue")
    sub = res["PipelineEventsToNotifier"]["Properties"]
    check(sub["Protocol"] == "sqs" and sub["TopicArn"] == {"Ref": "PipelineEventsTopic"}, "the notifier subscribes to pipeline-events")
    notifier_env = res["NotifierFunction"]["Properties"]["Environment"]["Variables"]
    check(notifier_env.get("SLACK_WEBHOOK_SECRET_ARN") == {"Ref": "SlackWebhookSecret"}, "the webhook URL comes from the secret")
    check("hooks.slack.com" not in json.dumps(res["NotifierFunction"]), "no webhook URL in the function's settings")
    # Safe to leave running: logs kept for a set time, alarms on every function and queue, data
    # that outlives the stack, expiring scratch prefixes, capped concurrency.
    functions = ("CsvProcessor", "WarehouseLoader", "MskLander", "Notifier")
    for f in functions:
        props = res[f"{f}Function"]["Properties"]
        logging = props.get("LoggingConfig", {})
        check(logging.get("LogGroup") == {"Ref": f"{f}LogGroup"}, f"{f}: logs go to its own log group")
        check(logging.get("ApplicationLogLevel") == {"Ref": "LogLevel"}, f"{f}: the log level is a parameter")
        group = res[f"{f}LogGroup"]["Properties"]
        check(group.get("RetentionInDays") == {"Ref": "LogRetentionDays"}, f"{f}: log retention is a parameter")
        for alarm in ("Errors", "Throttles", "Duration"):
            a = res.get(f"{f}{alarm}Alarm", {}).get("Properties", {})
            check({"Ref": "PipelineEventsTopic"} in a.get("AlarmActions", []), f"{f}: a {alarm} alarm on pipeline-events")
        check("ReservedConcurrentExecutions" not in props, f"{f}: no reserved concurrency (it throttles); cap the event source")
    for q in ("RawEvents", "ManifestEvents", "Notify"):
        a = res[f"{q}QueueAgeAlarm"]["Properties"]
        check(a["MetricName"] == "ApproximateAgeOfOldestMessage", f"{q}: an alarm on the oldest message's age")
    for m in mappings:
        if "Queues" in m or str(m.get("EventSourceArn", "")).find("Queue") >= 0:
            check("MaximumConcurrency" in m.get("ScalingConfig", {}), f"every SQS source is capped by MaximumConcurrency: {m.get('EventSourceArn')}")
    for name in ("RawBucket", "ProcessedBucket", "ProcessedKey"):
        check(res[name].get("DeletionPolicy") == "Retain" and res[name].get("UpdateReplacePolicy") == "Retain",
              f"{name} outlives the stack")
    check(res["RawBucket"]["Properties"]["VersioningConfiguration"]["Status"] == "Enabled", "the raw bucket is versioned")
    rules = {r.get("Prefix"): r for r in processed["LifecycleConfiguration"]["Rules"]}
    for prefix, param in (("quarantine/", "QuarantineRetentionDays"), ("handoffs/", "HandoffRetentionDays"),
                          ("notifications/sent/", "SentLogRetentionDays")):
        check(rules.get(prefix, {}).get("ExpirationInDays") == {"Ref": param}, f"{prefix} expires after {param}")
    check(msk.get("MaximumRetryAttempts") == {"Ref": "MskMaximumRetryAttempts"}
          and msk.get("MaximumRecordAgeInSeconds") == {"Ref": "MskMaximumRecordAgeSeconds"},
          "the MSK source's retries and record age are bounded")
    print(f"SAM translator: {len(res)} CloudFormation resources "
          f"({', '.join(sorted(t.split('::')[-1] for t in by_type))}); checks passed")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "template.yaml")
