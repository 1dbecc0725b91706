"""Checks template.yaml offline, as .ci/run calls it after cfn-lint and checkov.

1. SAM's own translator turns the template into plain CloudFormation, and the result must hold what
   the design promises (private processed bucket, queues with dead-letter queues and partial batch
   responses, one topic per Kafka event source, capped SQS sources, least-privilege roles).
2. Every role's inline policies are resolved into plain JSON (two parameter sets: the defaults, and
   everything on: MSK, its VPC endpoints, a provisioned Redshift cluster) and linted by parliament,
   which knows each action's resource types from the Service Authorization Reference: a grant on a
   resource an action never takes is an error here, not a refusal at the first real call.
3. The S3 grants of each function are written as `tests/grants.json`, which the tests' S3-protocol
   server enforces (bondlake::s3_server::Grants): a call the role may not make fails a test.
   `--grants PATH` compares (CI); `--write-grants PATH` regenerates after a template change.
"""
import argparse
import copy
import json
import os
import re
import sys

from samtranslator.public.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

ACCOUNT = "123456789012"
REGION = "us-east-1"
# Every optional part switched on, with well-formed example values.
EVERYTHING = {
    "MskClusterArn": f"arn:aws:kafka:{REGION}:{ACCOUNT}:cluster/bondlake/0b9c7a52-1d2e-4f3a-9b8c-7d6e5f4a3b2c-2",
    "MskSecurityGroupId": "sg-0123456789abcdef0",
    "MskVpcId": "vpc-0123456789abcdef0",
    "MskSubnetIds": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
    "MskRouteTableIds": ["rtb-0123456789abcdef0"],
    "CreateMskVpcEndpoints": "true",
    "MskProvisionedPollers": "true",
    "RedshiftClusterId": "bondlake",
    "NotifyEmail": "data-team@example.com",
    "MySqlSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:bondlake/mysql-AbCdEf",
    "MySqlSubnetIds": ["subnet-0123456789abcdef2"],
    "MySqlSecurityGroupIds": ["sg-0123456789abcdef1"],
}
# The functions whose S3 calls the tests make, and the role each runs as.
FUNCTION_ROLES = {
    "csv-processor": "CsvProcessorFunctionRole",
    "warehouse-loader": "WarehouseLoaderRole",
    "msk-lander": "MskLanderFunctionRole",
    "notifier": "NotifierFunctionRole",
    "emr-launcher": "EmrLauncherFunctionRole",
    # warehouse-loader's binary with WAREHOUSE=mysql: the weekly chain's export.
    "weekly-export": "WeeklyExportFunctionRole",
    # The EMR step (bondlake handoff) runs as the nodes' instance profile.
    "emr-step": "EmrInstanceRole",
}


class Plugins:
    """No managed-policy lookups: the template names its policies inline."""

    def load(self):
        return {}


def translate(path):
    with open(path) as f:
        template = yaml_parse(f.read())
    # The translator wants an uploaded artifact, as `sam package` would leave it.
    for res in template["Resources"].values():
        if res["Type"] == "AWS::Serverless::Function":
            res["Properties"]["CodeUri"] = "s3://bondlake-artifacts/csv-processor.zip"
    try:
        return transform(template, {}, Plugins())
    except InvalidDocumentException as e:
        sys.exit("SAM translator: " + "; ".join(str(c) for c in e.causes))


NO_VALUE = object()


class Resolver:
    """Evaluates CloudFormation's intrinsic functions for one set of parameter values, with names
    and ARNs shaped as CloudFormation would make them."""

    def __init__(self, cfn, overrides):
        self.cfn = cfn
        self.params = {}
        for name, p in cfn.get("Parameters", {}).items():
            value = overrides.get(name, p.get("Default", ""))
            if p.get("Type") == "CommaDelimitedList" and isinstance(value, str):
                value = [v for v in value.split(",") if v]
            self.params[name] = value
        self.stack = f"bondlake-{self.params.get('Stage', 'dev')}"
        self.conditions = {}
        for name in cfn.get("Conditions", {}):
            self.condition(name)

    def condition(self, name):
        if name not in self.conditions:
            self.conditions[name] = bool(self.value(self.cfn["Conditions"][name]))
        return self.conditions[name]

    def exists(self, logical):
        r = self.cfn["Resources"].get(logical)
        return r is not None and ("Condition" not in r or self.condition(r["Condition"]))

    def prop(self, logical, key, default):
        props = self.cfn["Resources"][logical].get("Properties", {})
        return self.value(props[key]) if key in props else default

    def ref(self, name):
        pseudo = {
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": REGION,
            "AWS::Partition": "aws",
            "AWS::StackName": self.stack,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.params:
            return self.params[name]
        kind = self.cfn["Resources"][name]["Type"]
        if kind == "AWS::S3::Bucket":
            return self.prop(name, "BucketName", f"{self.stack}-{name.lower()}")
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{self.queue_name(name)}"
        if kind == "AWS::SNS::Topic":
            return f"arn:aws:sns:{REGION}:{ACCOUNT}:{self.prop(name, 'TopicName', f'{self.stack}-{name}')}"
        if kind == "AWS::KMS::Key":
            return f"1234abcd-12ab-34cd-56ef-{name.lower()[:12]:0>12}"
        if kind == "AWS::SecretsManager::Secret":
            return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{self.prop(name, 'Name', name)}-AbCdEf"
        if kind in ("AWS::Lambda::Function", "AWS::IAM::Role"):
            key = "FunctionName" if kind == "AWS::Lambda::Function" else "RoleName"
            return self.prop(name, key, f"{self.stack}-{name}")
        return name

    def queue_name(self, logical):
        return self.prop(logical, "QueueName", f"{self.stack}-{logical}")

    def get_att(self, logical, attr):
        kind = self.cfn["Resources"][logical]["Type"]
        if attr == "Arn":
            if kind == "AWS::S3::Bucket":
                return f"arn:aws:s3:::{self.ref(logical)}"
            if kind == "AWS::SQS::Queue":
                return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{self.queue_name(logical)}"
            if kind == "AWS::KMS::Key":
                return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{self.ref(logical)}"
            if kind == "AWS::IAM::Role":
                return f"arn:aws:iam::{ACCOUNT}:role/{self.ref(logical)}"
            if kind == "AWS::Lambda::Function":
                return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.ref(logical)}"
        if attr in ("TopicArn", "Id"):
            return self.ref(logical)
        if attr == "QueueName":
            return self.queue_name(logical)
        return f"{logical}.{attr}"

    def sub(self, text, variables):
        def one(m):
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name:
                logical, attr = name.split(".", 1)
                return str(self.get_att(logical, attr))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def value(self, node):
        if isinstance(node, list):
            return [v for v in (self.value(n) for n in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (fn, arg), = node.items()
            if fn == "Ref":
                return self.ref(arg)
            if fn == "Fn::GetAtt":
                logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(logical, attr)
            if fn == "Fn::Sub":
                if isinstance(arg, str):
                    return self.sub(arg, {})
                return self.sub(arg[0], {k: self.value(v) for k, v in arg[1].items()})
            if fn == "Fn::If":
                return self.value(arg[1] if self.condition(arg[0]) else arg[2])
            if fn == "Fn::Select":
                return self.value(arg[1])[int(self.value(arg[0]))]
            if fn == "Fn::Split":
                return self.value(arg[1]).split(arg[0])
            if fn == "Fn::Join":
                return arg[0].join(str(v) for v in self.value(arg[1]))
            if fn == "Fn::Equals":
                a, b = self.value(arg)
                return a == b
            if fn == "Fn::Not":
                return not self.value(arg[0])
            if fn == "Fn::And":
                return all(self.value(a) for a in arg)
            if fn == "Fn::Or":
                return any(self.value(a) for a in arg)
            if fn == "Condition":
                return self.condition(arg)
        out = {}
        for k, v in node.items():
            v = self.value(v)
            if v is not NO_VALUE:
                out[k] = v
        return out


def inline_policies(resolver, role):
    """A role's inline policy documents, resolved."""
    props = resolver.cfn["Resources"][role]["Properties"]
    return [resolver.value(p["PolicyDocument"]) for p in props.get("Policies", [])]


def as_list(v):
    return v if isinstance(v, list) else [v]


def lint_policies(cfn, name, overrides):
    """Every role's inline policies through parliament; returns the findings as text."""
    from parliament import analyze_policy_string

    resolver = Resolver(cfn, overrides)
    problems = []
    roles = [n for n, r in cfn["Resources"].items() if r["Type"] == "AWS::IAM::Role" and resolver.exists(n)]
    for role in roles:
        for doc in inline_policies(resolver, role):
            policy = analyze_policy_string(json.dumps(doc))
            for f in policy.findings:
                problems.append(f"{name}: {role}: {f.issue} {f.detail}")
            for st in doc["Statement"]:
                if "*" in as_list(st.get("Resource", [])) and "Condition" not in st:
                    problems.append(f"{name}: {role}: {st.get('Sid')}: Resource \"*\" with no condition")
    return roles, problems


def s3_grants(cfn):
    """Each function's S3 statements, with the stack's buckets written as {raw}, {processed},
    {kafka_failures}, {artifacts}, {emr_logs}: the test server maps them to its own buckets."""
    resolver = Resolver(cfn, EVERYTHING)
    buckets = {}
    for logical, placeholder in (("RawBucket", "raw"), ("ProcessedBucket", "processed"),
                                 ("KafkaFailuresBucket", "kafka_failures"), ("AccessLogsBucket", "access_logs"),
                                 ("ArtifactsBucket", "artifacts"), ("EmrLogsBucket", "emr_logs")):
        buckets[resolver.ref(logical)] = "{" + placeholder + "}"

    def placeholder(arn):
        m = re.fullmatch(r"arn:aws:s3:::([^/]+)(/.*)?", arn)
        if not m:
            return None
        if m.group(1) not in buckets:
            sys.exit(f"grants: {arn} names a bucket that is not the stack's")
        return buckets[m.group(1)] + (m.group(2) or "")

    grants = {}
    for function, role in FUNCTION_ROLES.items():
        statements = []
        for doc in inline_policies(resolver, role):
            for st in doc["Statement"]:
                actions = sorted(a for a in as_list(st["Action"]) if a.startswith("s3:"))
                if not actions:
                    continue
                if st["Effect"] != "Allow" or "Condition" in st:
                    sys.exit(f"grants: {role}: {st.get('Sid')}: only unconditional Allow statements are modelled")
                resources = [placeholder(r) for r in as_list(st["Resource"])]
                statements.append({"sid": st.get("Sid", ""), "actions": actions,
                                   "resources": [r for r in resources if r]})
        grants[function] = statements
    return grants


def structure(cfn):
    """What the design promises, on the translated template (references left unresolved)."""
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
    for q in ("RawEventsQueue", "ManifestEventsQueue", "NotifyQueue", "HandoffsQueue", "WeeklyResultsQueue"):
        redrive = res[q]["Properties"]["RedrivePolicy"]
        check("deadLetterTargetArn" in redrive, f"{q} needs a dead-letter queue")
        # Lambda's pollers may receive a message more than once before the function sees it.
        check(int(redrive["maxReceiveCount"]) >= 5, f"{q}: maxReceiveCount at least 5")
    mappings = {n: res[n]["Properties"] for n in by_type.get("AWS::Lambda::EventSourceMapping", [])}
    sqs = {n: m for n, m in mappings.items() if "Topics" not in m}
    check(len(sqs) == 5, f"five SQS event sources (raw, manifests, notify, handoffs, weekly results): {sorted(sqs)}")
    for n, m in sqs.items():
        check(m.get("FunctionResponseTypes") == ["ReportBatchItemFailures"], f"{n}: partial batch responses")
        if n.startswith("EmrLauncher"):
            continue  # capped at one by its reserved concurrency, below (SQS's cap is at least 2)
        # Reserved concurrency alone lets throttled messages reach the dead-letter queue untried.
        check("MaximumConcurrency" in m.get("ScalingConfig", {}), f"{n}: capped by MaximumConcurrency")
    functions = ("CsvProcessor", "WarehouseLoader", "MskLander", "Notifier", "EmrLauncher", "WeeklyExport")
    for f in functions:
        props = res[f"{f}Function"]["Properties"]
        check(props["Runtime"] == "provided.al2023" and props["Architectures"] == ["arm64"],
              f"{f}: provided.al2023 on arm64")
    loader = res["WarehouseLoaderFunction"]["Properties"]
    env = loader["Environment"]["Variables"]
    check("REDSHIFT_WORKGROUP" in env and "REDSHIFT_CLUSTER_ID" in env and not any("PASSWORD" in k for k in env),
          "the loader authenticates by IAM to a workgroup or a cluster, never with a password")
    # The database user is IAMR:<role name>; the README's grants name it.
    check(loader.get("Role") == {"Fn::GetAtt": ["WarehouseLoaderRole", "Arn"]}
          and res["WarehouseLoaderRole"]["Properties"]["RoleName"] == {"Fn::Sub": "bondlake-${Stage}-warehouse-loader"},
          "the loader's role has the fixed name bondlake-<Stage>-warehouse-loader")
    notifications = processed["NotificationConfiguration"]["QueueConfigurations"]
    check(any(r["Name"] == "prefix" and r["Value"] == "manifests/" for n in notifications if "Filter" in n
              for r in n["Filter"]["S3Key"]["Rules"]),
          "the processed bucket must announce manifests (and only them) to the loader's queue")
    check(res["MskLanderFunction"].get("Condition") == "HasMskCluster", "msk-lander exists only when a cluster is named")
    # Kafka event source mappings take functions with a timeout of at most 14 minutes.
    check(int(res["MskLanderFunction"]["Properties"]["Timeout"]) <= 840, "msk-lander: timeout at most 840 s")
    msk = {n: m for n, m in mappings.items() if "Topics" in m}
    check(sorted(json.dumps(m["Topics"]) for m in msk.values()) == sorted(
        [json.dumps([{"Ref": "MskHoldingsTopic"}]), json.dumps([{"Ref": "MskPricesTopic"}])]),
        "one MSK event source per topic (the Lambda API takes exactly one topic per Kafka mapping)")
    groups = set()
    for n, m in msk.items():
        check(m["BatchSize"] == {"Ref": "MskBatchSize"}
              and m["MaximumBatchingWindowInSeconds"] == {"Ref": "MskBatchingWindowSeconds"},
              f"{n}: batch size and window from parameters")
        # Retry controls are taken in provisioned mode only: set with it, or not at all (on
        # demand, a mapping with an on-failure destination retries 10 times).
        provisioned = "MskProvisioned"
        check(m.get("ProvisionedPollerConfig", {}).get("Fn::If", [None])[0] == provisioned
              and m.get("MaximumRetryAttempts", {}).get("Fn::If", [None])[0] == provisioned
              and m.get("MaximumRecordAgeInSeconds", {}).get("Fn::If", [None])[0] == provisioned,
              f"{n}: retry controls only together with provisioned mode")
        check("BisectBatchOnFunctionError" not in m, f"{n}: BisectBatchOnFunctionError is for Kinesis and DynamoDB streams")
        # S3 keeps the batch's records; an SQS or SNS destination keeps only their offsets.
        check(m.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
              == {"Fn::GetAtt": ["KafkaFailuresBucket", "Arn"]}, f"{n}: failed batches kept, records and all, in S3")
        groups.add(json.dumps(m["AmazonManagedKafkaEventSourceConfig"]["ConsumerGroupId"]))
    check(len(groups) == len(msk), "each MSK event source has its own consumer group")
    check("MskOffsetLagAlarm" in res, "an alarm on the lander's offset lag")
    notify = [m for m in mappings.values() if m.get("MaximumBatchingWindowInSeconds") == {"Ref": "DigestWindowSeconds"}]
    check(len(notify) == 1, "the notifier's queue mapping: the digest window as its batching window")
    sub = res["PipelineEventsToNotifier"]["Properties"]
    check(sub["Protocol"] == "sqs" and sub["TopicArn"] == {"Ref": "PipelineEventsTopic"}, "the notifier subscribes to pipeline-events")
    notifier_env = res["NotifierFunction"]["Properties"]["Environment"]["Variables"]
    check(notifier_env.get("SLACK_WEBHOOK_SECRET_ARN") == {"Ref": "SlackWebhookSecret"}, "the webhook URL comes from the secret")
    check("hooks.slack.com" not in json.dumps(res["NotifierFunction"]), "no webhook URL in the function's settings")
    for role in FUNCTION_ROLES.values():
        check('"s3:*"' not in json.dumps(res[role]["Properties"]), f"{role}: no s3:*")
    # Safe to leave running: logs kept for a set time, alarms on every function and queue, data
    # that outlives the stack, expiring scratch prefixes, capped concurrency.
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
        if f == "EmrLauncher":
            # One at a time: a claim and its submission are never raced (launch.rs).
            check(props.get("ReservedConcurrentExecutions") == 1, "emr-launcher: reserved concurrency 1")
        else:
            check("ReservedConcurrentExecutions" not in props, f"{f}: no reserved concurrency (it throttles); cap the event source")
    for q in ("RawEvents", "ManifestEvents", "Notify", "Handoffs", "WeeklyResults"):
        a = res[f"{q}QueueAgeAlarm"]["Properties"]
        check(a["MetricName"] == "ApproximateAgeOfOldestMessage", f"{q}: an alarm on the oldest message's age")
    # The launcher: hand-offs only, EMR's state changes of our runs, the sweep, the nodes' role.
    launcher_sub = [res[n]["Properties"] for n in by_type["AWS::SNS::Subscription"]
                    if res[n]["Properties"].get("Endpoint") == {"Fn::GetAtt": ["HandoffsQueue", "Arn"]}]
    check(len(launcher_sub) == 1 and launcher_sub[0].get("FilterPolicy") == {"kind": ["handoff"]}
          and launcher_sub[0].get("FilterPolicyScope") == "MessageAttributes",
          "the launcher's queue subscribes to kind=handoff only")
    rules = [res[n]["Properties"] for n in by_type.get("AWS::Events::Rule", [])]
    emr_rules = [r for r in rules if r.get("EventPattern", {}).get("source") == ["aws.emr"]]
    check(len(emr_rules) == 1 and emr_rules[0]["EventPattern"]["detail"]["name"] == [{"prefix": "bondlake-"}],
          "EMR state changes of bondlake's runs reach the launcher")
    check(any(r.get("ScheduleExpression", "").startswith("rate(") for r in rules), "a schedule sweeps the claims")
    nodes = json.dumps(res["EmrInstanceRole"]["Properties"])
    check('"s3:*"' not in nodes and '"Resource": "*"' not in nodes, "EmrInstanceRole: least privilege")
    passed = json.dumps(res["EmrLauncherFunctionRole"]["Properties"])
    check('"iam:PassRole"' in passed and "EmrServiceRole" in passed and "EmrInstanceRole" in passed,
          "emr-launcher passes only the EMR roles")
    for name in ("ArtifactsBucket", "EmrLogsBucket"):
        b = res[name]["Properties"]
        check(all(b["PublicAccessBlockConfiguration"].values()), f"{name} blocks public access")
        check(b["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms",
              f"{name} is encrypted with KMS")
        check(b.get("LifecycleConfiguration", {}).get("Rules"), f"{name} has a lifecycle")
        policy = json.dumps(res[f"{name}Policy"]["Properties"]["PolicyDocument"])
        check('"aws:SecureTransport": "false"' in policy, f"{name} denies non-TLS requests")
    for name in ("RawBucket", "ProcessedBucket", "ProcessedKey", "KafkaFailuresBucket"):
        check(res[name].get("DeletionPolicy") == "Retain" and res[name].get("UpdateReplacePolicy") == "Retain",
              f"{name} outlives the stack")
    check(res["RawBucket"]["Properties"]["VersioningConfiguration"]["Status"] == "Enabled", "the raw bucket is versioned")
    rules = {r.get("Prefix"): r for r in processed["LifecycleConfiguration"]["Rules"]}
    for prefix, param in (("quarantine/", "QuarantineRetentionDays"), ("handoffs/", "HandoffRetentionDays"),
                          ("launches/", "HandoffRetentionDays"), ("weeklies/", "HandoffRetentionDays"),
                          ("notifications/sent/", "SentLogRetentionDays")):
        check(rules.get(prefix, {}).get("ExpirationInDays") == {"Ref": param}, f"{prefix} expires after {param}")
    # The weekly chain: a schedule in the chosen time zone names its run by the scheduled time
    # (the launcher's claim), the result cues the export, which exists only with a database,
    # reads its password from the secret and verifies RDS's certificate.
    schedules = [res[n]["Properties"] for n in by_type.get("AWS::Scheduler::Schedule", [])]
    check(len(schedules) == 1, "one weekly schedule")
    weekly = schedules[0]
    check(weekly["ScheduleExpressionTimezone"] == {"Ref": "WeeklyScheduleTimezone"}
          and "WeeklyScheduleHour" in json.dumps(weekly["ScheduleExpression"]),
          "the weekly schedule's hour and time zone are parameters")
    target = weekly["Target"]
    check(target["Arn"] == {"Fn::GetAtt": ["EmrLauncherFunction", "Arn"]}
          and json.loads(target["Input"]) == {"weekly": {"scheduled": "<aws.scheduler.scheduled-time>"}},
          "the schedule invokes the launcher with its scheduled time")
    check("DeadLetterConfig" in target and "RetryPolicy" in target, "the schedule retries, then keeps what failed")
    export = res["WeeklyExportFunction"]
    check(export.get("Condition") == "HasMySql", "the export exists only when MySqlSecretArn names a database")
    env = export["Properties"]["Environment"]["Variables"]
    check(env.get("WAREHOUSE") == "mysql" and env.get("MYSQL_SECRET_ARN") == {"Ref": "MySqlSecretArn"}
          and env.get("MYSQL_TLS_CA") == "/var/task/rds-ca-bundle.pem"
          and not any("PASSWORD" in k for k in env),
          "the export: MySQL from the secret, TLS verified against the shipped RDS bundle")
    cues = [n for n in notifications if isinstance(n, dict) and "Fn::If" in n]
    check(len(cues) == 1 and cues[0]["Fn::If"][0] == "HasMySql"
          and cues[0]["Fn::If"][1]["Queue"] == {"Fn::GetAtt": ["WeeklyResultsQueue", "Arn"]}
          and {"Name": "suffix", "Value": ".result.json"} in cues[0]["Fn::If"][1]["Filter"]["S3Key"]["Rules"],
          "the weekly job's result cues the export, when there is one")
    return by_type


def build_methods(path, makefile="Makefile", cargo_toml="Cargo.toml"):
    """Each function is built by the Makefile's target for it, with Cargo.toml's lambda profile
    (SAM's rust-cargolambda method would always ship the tests' `--release` build)."""
    with open(path) as f:
        template = yaml_parse(f.read())
    with open(makefile) as f:
        make = f.read()
    with open(cargo_toml) as f:
        cargo = f.read()
    if not re.search(r"^\[profile\.lambda\]\ninherits = \"release\"\nlto = \"fat\"\ncodegen-units = 1\n(.*\n)*?strip = true", cargo, re.M):
        sys.exit("Cargo.toml: [profile.lambda] must inherit release with fat LTO, one codegen unit, stripped")
    if "--profile $(PROFILE)" not in make or not re.search(r"^PROFILE \?= lambda$", make, re.M):
        sys.exit("Makefile: cargo lambda build must use the lambda profile")
    built = 0
    for name, res in template["Resources"].items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        meta = res.get("Metadata", {})
        if meta.get("BuildMethod") != "makefile":
            sys.exit(f"template: {name} must use BuildMethod: makefile (the lambda profile), not {meta.get('BuildMethod')}")
        target = re.search(rf"^build-{name}:\n\t\$\(call lambda_bootstrap,([a-z-]+)\)$", make, re.M)
        if not target:
            sys.exit(f"Makefile: no build-{name} target calling lambda_bootstrap")
        if not os.path.exists(os.path.join("functions", target.group(1), "Cargo.toml")):
            sys.exit(f"Makefile: build-{name} builds {target.group(1)}, which is not in functions/")
        built += 1
    return built


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("template", nargs="?", default="template.yaml")
    ap.add_argument("--grants", help="fail unless this file holds the template's S3 grants")
    ap.add_argument("--write-grants", help="write the template's S3 grants to this file")
    args = ap.parse_args()

    built = build_methods(args.template)
    cfn = translate(args.template)
    by_type = structure(copy.deepcopy(cfn))

    problems = []
    for name, overrides in (("defaults", {}), ("everything on", EVERYTHING)):
        roles, found = lint_policies(cfn, name, overrides)
        problems += found
    if problems:
        sys.exit("IAM policies (parliament):\n  " + "\n  ".join(problems))

    grants = json.dumps(s3_grants(cfn), indent=2, sort_keys=True) + "\n"
    if args.write_grants:
        with open(args.write_grants, "w") as f:
            f.write(grants)
    if args.grants:
        with open(args.grants) as f:
            if f.read() != grants:
                sys.exit(f"{args.grants} is not the template's S3 grants: run "
                         f"`python .ci/check_template.py --write-grants {args.grants}` and commit it")

    print(f"SAM translator: {len(cfn['Resources'])} CloudFormation resources "
          f"({', '.join(sorted(t.split('::')[-1] for t in by_type))}); checks passed; "
          f"{len(roles)} roles' policies clean under parliament; "
          f"{built} functions built by the Makefile with the lambda profile")


if __name__ == "__main__":
    main()
