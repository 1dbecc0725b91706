#!/usr/bin/env bash
# The functions' release binaries, run as Lambda runs them (tools/lambda-standin.py answers the
# Runtime API and GetSecretValue), against bondlake s3-server and bondlake webhook-receiver, with
# the settings and sample events `sam local invoke --env-vars events/env.json -e events/...` uses.
set -euo pipefail
bin="$CARGO_TARGET_DIR/release"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [ -n "${KEEP_WORK:-}" ] && echo "kept $work" || rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { for _ in $(seq 50); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; cat "$1"; return 1; }

# One function's variables from events/env.json, as KEY=VALUE words.
env_of() { python3 -c 'import json,sys; print(" ".join(f"{k}={v}" for k, v in json.load(open("events/env.json"))[sys.argv[1]].items()))' "$1"; }
raw=bondlake-dev-raw-123456789012
processed=bondlake-dev-processed-123456789012
artifacts=bondlake-dev-artifacts-123456789012

s3_port=$(free_port)
"$bin/bondlake" s3-server --root "$work/s3" --addr "127.0.0.1:$s3_port" --bucket "$raw" --bucket "$processed" --bucket "$artifacts" > "$work/s3.log" 2>&1 &
pids+=($!)
wait_for "$work/s3.log" "serving"
"$bin/bondlake" webhook-receiver --listen 127.0.0.1:0 > "$work/slack.log" 2>&1 &
pids+=($!)
wait_for "$work/slack.log" "BONDLAKE_SLACK_WEBHOOK="
webhook=$(sed -n 's/^  BONDLAKE_SLACK_WEBHOOK=\([^ ]*\) .*/\1/p' "$work/slack.log")

export AWS_ENDPOINT_URL_S3="http://127.0.0.1:$s3_port" S3_FORCE_PATH_STYLE=true AWS_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=bondlake AWS_SECRET_ACCESS_KEY=bondlake-local-secret \
  AWS_LAMBDA_FUNCTION_NAME=ci AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512 AWS_LAMBDA_FUNCTION_VERSION=1 \
  AWS_LAMBDA_LOG_STREAM_NAME=s AWS_LAMBDA_LOG_GROUP_NAME=g

invoke() { # name event env...
  local name=$1 event=$2; shift 2
  local port; port=$(free_port)
  python3 tools/lambda-standin.py "$event" "$port" "$work/$name.json" &
  local standin=$!
  # Started when it accepts a connection (a fixed pause lost the race on a busy machine, and
  # the binary, refused, answered nothing).
  local up=""
  for _ in $(seq 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then up=1; break; fi
    sleep 0.05
  done
  [ -n "$up" ] || { echo "ci: the Lambda stand-in for $name did not start" >&2; exit 1; }
  env AWS_LAMBDA_RUNTIME_API="127.0.0.1:$port" AWS_ENDPOINT_URL_SECRETS_MANAGER="http://127.0.0.1:$port" "$@" \
    timeout 60 "$bin/$name" > "$work/$name.log" 2>&1 || true
  # The stand-in exits once answered; one whose function died without answering must not hang CI.
  for _ in $(seq 30); do kill -0 "$standin" 2>/dev/null || break; sleep 0.1; done
  kill "$standin" 2>/dev/null || true
  wait "$standin" 2>/dev/null || true
  test -s "$work/$name.json" || { cat "$work/$name.log"; echo "ci: $name answered nothing" >&2; exit 1; }
}

# csv-processor over the SQS-wrapped holdings event, its object generated at the event's key (the
# event's ETag blanked: the generated file is not the sample's).
"$bin/bondlake" gen --dataset investor_holdings --rows 2000 --dirty 0.03 \
  --out "$work/s3/$raw/holdings/custodian_a/holdings_20261125.csv.gz" 2> /dev/null
sed 's/\\"eTag\\": \\"[^\\]*\\"/\\"eTag\\": \\"\\"/' events/sqs-holdings.json > "$work/sqs-holdings.json"
# shellcheck disable=SC2046
invoke csv-processor "$work/sqs-holdings.json" $(env_of CsvProcessorFunction) PIPELINE_EVENTS_TOPIC_ARN=stdout
grep -q '\\"batchItemFailures\\":\[\]' "$work/csv-processor.json" \
  || { cat "$work/csv-processor.json" "$work/csv-processor.log"; echo "ci: csv-processor failed its batch" >&2; exit 1; }
test -n "$(find "$work/s3/$processed/manifests/investor_holdings" -name '*.json' -print -quit)" \
  || { cat "$work/csv-processor.log"; echo "ci: csv-processor wrote no manifest" >&2; exit 1; }

# A hand-off, as EMR runs it: csv-processor hands a second object off (HANDOFF_MAX_MB=0 makes
# every object too big), then the step emr-launcher submits for it runs, exactly as printed by
# `bondlake emr-step`: the aws CLI fetches the bundle (tools/emr-bundle.sh) from the artifacts
# bucket, tar unpacks it, the bundle's binary runs on the request. The S3-protocol server stands
# in for S3 (AWS_ENDPOINT_URL_S3, as the nodes' own S3 would be), and writes the manifest
# csv-processor would have written.
"$bin/bondlake" gen --dataset investor_holdings --rows 2000 --seed 7 --dirty 0.03 \
  --out "$work/s3/$raw/holdings/custodian_b/holdings_20261125.csv.gz" 2> /dev/null
sed 's/custodian_a/custodian_b/g' "$work/sqs-holdings.json" > "$work/sqs-handoff.json"
# shellcheck disable=SC2046
invoke csv-processor "$work/sqs-handoff.json" $(env_of CsvProcessorFunction) PIPELINE_EVENTS_TOPIC_ARN=stdout HANDOFF_MAX_MB=0
request=$(find "$work/s3/$processed/handoffs/investor_holdings" -name 'holdings_20261125-*.json' -newer "$work/sqs-handoff.json" -print -quit 2>/dev/null || true)
test -n "$request" || { cat "$work/csv-processor.log"; echo "ci: csv-processor wrote no hand-off request" >&2; exit 1; }
request_key=${request#"$work/s3/$processed/"}
manifests_before=$(find "$work/s3/$processed/manifests/investor_holdings" -name '*.json' | wc -l)
aws_cli=${AWS_CLI:-$(command -v aws || true)}
[ -x "$aws_cli" ] || { echo "ci: the aws CLI is needed to run the EMR step's script (set AWS_CLI)" >&2; exit 1; }
mkdir -p "$work/s3/$artifacts/bondlake"
tools/emr-bundle.sh "$bin/bondlake" "$work/s3/$artifacts/bondlake/bondlake-emr.tar.gz" > /dev/null
step_name="bondlake-ci-$$-a1"
script=$("$bin/bondlake" emr-step --request "s3://$processed/$request_key" --artifacts "s3://$artifacts/bondlake/" \
  --name "$step_name" | python3 -c 'import json, sys; print(json.load(sys.stdin)[2])')
PATH="$(dirname "$aws_cli"):$PATH" AWS_DEFAULT_REGION=us-east-1 timeout 120 bash -c "$script" > "$work/handoff.log" 2>&1 \
  || { echo "$script"; cat "$work/handoff.log"; echo "ci: the EMR step's script failed" >&2; rm -rf "/mnt/tmp/$step_name"; exit 1; }
rm -rf "/mnt/tmp/$step_name"
manifests_after=$(find "$work/s3/$processed/manifests/investor_holdings" -name '*.json' | wc -l)
[ "$manifests_after" -eq $((manifests_before + 1)) ] && grep -q '"kind":"processed"' "$work/handoff.log" \
  || { cat "$work/handoff.log"; echo "ci: the EMR step wrote no manifest (had $manifests_before, now $manifests_after)" >&2; exit 1; }

# shellcheck disable=SC2046
invoke msk-lander events/msk-poison.json $(env_of MskLanderFunction) PIPELINE_EVENTS_TOPIC_ARN=stdout
grep -q '\\"landed\\":2,\\"quarantined\\":1' "$work/msk-lander.json" \
  || { cat "$work/msk-lander.json" "$work/msk-lander.log"; echo "ci: msk-lander did not land the poison batch" >&2; exit 1; }
test -n "$(find "$work/s3/$processed/quarantine/kafka" -name '*.csv.gz' -print -quit)" \
  || { echo "ci: msk-lander wrote no quarantine object" >&2; exit 1; }

# The weekly export as deployed (WeeklyExportFunction): warehouse-loader with WAREHOUSE=mysql, cued
# by a weekly result through SQS, its connection from "Secrets Manager", into this machine's
# MariaDB. The trends are the demo's, copied into the processed bucket as the weekly job leaves them.
command -v mysql > /dev/null || { echo "ci: the mysql client is missing (apt-get install mariadb-client)" >&2; exit 1; }
"$bin/bondlake" demo --root "$work/demo" > "$work/demo.log" 2>&1 \
  || { cat "$work/demo.log"; echo "ci: bondlake demo failed" >&2; exit 1; }
mkdir -p "$work/s3/$processed/manifests" "$work/s3/$processed/processed"
cp -r "$work/demo/manifests/weekly_trends" "$work/s3/$processed/manifests/"
cp -r "$work/demo/processed/weekly_trends" "$work/s3/$processed/processed/"
trend_rows=$(python3 -c 'import json, glob, sys; print(sum(json.load(open(m))["rows_written"] for m in glob.glob(sys.argv[1] + "/*.json")))' \
  "$work/s3/$processed/manifests/weekly_trends")
mysql_db="ci_weekly_export_$$"
mysql -h127.0.0.1 -P3306 -uroot -e "DROP DATABASE IF EXISTS $mysql_db; CREATE DATABASE $mysql_db"
# MYSQL_TLS_CA blank: this server has no TLS (the shipped bundle's refusal of it is a unit test).
# shellcheck disable=SC2046
FAKE_SECRET_STRING="{\"host\":\"127.0.0.1\",\"port\":3306,\"username\":\"root\",\"password\":\"\",\"dbname\":\"$mysql_db\"}" \
  invoke warehouse-loader events/sqs-weekly-results.json $(env_of WeeklyExportFunction) PIPELINE_EVENTS_TOPIC_ARN=stdout MYSQL_TLS_CA=
exported=$(mysql -h127.0.0.1 -P3306 -uroot -N -e "SELECT COUNT(*) FROM $mysql_db.weekly_trends" 2>&1 || true)
mysql -h127.0.0.1 -P3306 -uroot -e "DROP DATABASE IF EXISTS $mysql_db"
grep -q '\\"batchItemFailures\\":\[\]' "$work/warehouse-loader.json" && [ "$exported" = "$trend_rows" ] \
  || { cat "$work/warehouse-loader.json" "$work/warehouse-loader.log"; echo "ci: the weekly export put $exported of $trend_rows rows into MySQL" >&2; exit 1; }

# The notifier: Slack from "Secrets Manager"; no e-mail topic here (it would need AWS).
# shellcheck disable=SC2046
FAKE_SECRET_STRING="{\"url\": \"$webhook\"}" invoke notifier events/sqs-notifications.json \
  $(env_of NotifierFunction) NOTIFICATIONS_TOPIC_ARN=
grep -q '\\"batchItemFailures\\":\[\]' "$work/notifier.json" \
  || { cat "$work/notifier.json" "$work/notifier.log"; echo "ci: the notifier failed its batch" >&2; exit 1; }
sleep 0.3
posts=$(grep -c '^received:' "$work/slack.log" || true)
[ "$posts" = 4 ] || { cat "$work/slack.log"; echo "ci: expected 4 Slack posts, got $posts" >&2; exit 1; }
token=${webhook##*/}
if grep -q "$token" "$work/notifier.log"; then echo "ci: the webhook URL is in the notifier's log" >&2; exit 1; fi
echo "ci: the EMR step's script ran a hand-off against the S3-protocol server ($(grep -o 'manifest s3://[^ ]*' "$work/handoff.log" | head -1));" >&2
echo "ci: the weekly export put $exported trend rows into MariaDB, cued by an SQS-wrapped result;" >&2
echo "ci: csv-processor cleaned the holdings file; msk-lander landed 2 and quarantined 1; the notifier posted $posts messages, the URL not in its log"
