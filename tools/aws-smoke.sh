#!/usr/bin/env bash
# A first-deploy smoke test against a real stack (needs AWS credentials; nothing here runs in
# CI, which has no AWS). It uploads generated files to the raw bucket and follows them through
# csv-processor, the processed bucket and warehouse-loader into Redshift, then says what passed:
#   1. one holdings file and one NYSE file are processed (manifest status ok);
#   2. each is loaded once (a ledger row whose rows_loaded is the manifest's rows_written, or
#      fewer with the rest superseded by newer input), reconciled by the loader;
#   3. two files of one dataset uploaded at once both load (the lock and the ledger hold);
#   4. nothing is waiting in a dead-letter queue.
#
#   tools/aws-smoke.sh [--stack bondlake-dev] [--workgroup bondlake | --cluster ID] [--database dev] [--schema bondlake]
#
# It writes under holdings/smoke/ and market/NYSE/smoke/ only; rerunning is safe (new keys each
# run; the warehouse keeps the rows, keyed by the generated securities).
set -euo pipefail

stack=bondlake-dev workgroup=bondlake cluster="" database=dev schema=bondlake
while [ $# -gt 0 ]; do
  case "$1" in
    --stack) stack=$2; shift 2 ;;
    --workgroup) workgroup=$2; shift 2 ;;
    --cluster) cluster=$2; shift 2 ;;
    --database) database=$2; shift 2 ;;
    --schema) schema=$2; shift 2 ;;
    *) echo "aws-smoke: unknown argument $1" >&2; exit 2 ;;
  esac
done
for tool in aws python3; do
  command -v "$tool" >/dev/null || { echo "aws-smoke: '$tool' is needed" >&2; exit 2; }
done
bondlake=${BONDLAKE:-$(command -v bondlake || echo "${CARGO_TARGET_DIR:-target}/release/bondlake")}
[ -x "$bondlake" ] || { echo "aws-smoke: build the CLI first (cargo build --release -p bondlake-cli) or set BONDLAKE" >&2; exit 2; }

output() {
  aws cloudformation describe-stacks --stack-name "$stack" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}
raw=$(output RawBucketName)
processed=$(output ProcessedBucketName)
[ -n "$raw" ] && [ "$raw" != None ] || { echo "aws-smoke: stack $stack has no RawBucketName output" >&2; exit 2; }

run_id=$(date -u +%Y%m%dT%H%M%S)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
pass() { echo "PASS  $*"; passed=$((passed + 1)); }
fail() { echo "FAIL  $*"; failed=$((failed + 1)); }

# The files: one holdings, one NYSE, and two more holdings uploaded together.
declare -A keys
gen() { # name dataset profile seed key
  "$bondlake" gen --dataset "$2" ${3:+--profile "$3"} --rows 2000 --dirty 0.02 --seed "$4" --out "$work/$1.csv.gz" 2>/dev/null
  keys[$1]=$5
}
gen holdings investor_holdings "" 11 "holdings/smoke/holdings_${run_id}.csv.gz"
gen nyse market_daily us 12 "market/NYSE/smoke/nyse_${run_id}.csv.gz"
gen twin_a investor_holdings "" 13 "holdings/smoke/twin_a_${run_id}.csv.gz"
gen twin_b investor_holdings "" 14 "holdings/smoke/twin_b_${run_id}.csv.gz"
aws s3 cp --quiet "$work/holdings.csv.gz" "s3://$raw/${keys[holdings]}"
aws s3 cp --quiet "$work/nyse.csv.gz" "s3://$raw/${keys[nyse]}"
aws s3 cp --quiet "$work/twin_a.csv.gz" "s3://$raw/${keys[twin_a]}" &
aws s3 cp --quiet "$work/twin_b.csv.gz" "s3://$raw/${keys[twin_b]}" &
wait
echo "uploaded 4 files to s3://$raw (run $run_id); waiting for their manifests and loads (up to 15 minutes)"

# The manifest of a source key: manifests name their source; list the dataset's recent ones.
manifest_of() { # source_key dataset -> manifest key, or nothing yet
  local stem; stem=$(basename "$1" .csv.gz)
  aws s3api list-objects-v2 --bucket "$processed" --prefix "manifests/$2/$stem-" \
    --query 'Contents[].Key' --output text 2>/dev/null | tr '\t' '\n' | grep -v '^None$' | head -1
}

# One SQL statement through the Data API, as the caller: prints the rows as tab-separated text.
sql() {
  local target id status
  if [ -n "$cluster" ]; then target=(--cluster-identifier "$cluster"); else target=(--workgroup-name "$workgroup"); fi
  id=$(aws redshift-data execute-statement "${target[@]}" --database "$database" --sql "$1" --query Id --output text)
  for _ in $(seq 120); do
    status=$(aws redshift-data describe-statement --id "$id" --query Status --output text)
    case "$status" in
      FINISHED) break ;;
      FAILED|ABORTED) aws redshift-data describe-statement --id "$id" --query Error --output text >&2; return 1 ;;
    esac
    sleep 1
  done
  aws redshift-data get-statement-result --id "$id" --output json | python3 -c '
import json, sys
for row in json.load(sys.stdin)["Records"]:
    print("\t".join(str(next(iter(c.values()))) for c in row))'
}

deadline=$(( $(date +%s) + 900 ))
declare -A manifests
for name in holdings nyse twin_a twin_b; do
  dataset=investor_holdings; [ "$name" = nyse ] && dataset=market_daily
  while :; do
    m=$(manifest_of "${keys[$name]}" "$dataset")
    [ -n "$m" ] && break
    [ "$(date +%s)" -lt "$deadline" ] || break
    sleep 10
  done
  manifests[$name]=$m
  if [ -z "$m" ]; then fail "$name: no manifest for s3://$raw/${keys[$name]} (csv-processor's log, and its dead-letter queue)"; continue; fi
  aws s3 cp --quiet "s3://$processed/$m" "$work/$name.json"
  status=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["status"])' "$work/$name.json")
  [ "$status" = ok ] && pass "$name: processed, manifest $m (status ok)" || fail "$name: manifest $m has status $status"
done

for name in holdings nyse twin_a twin_b; do
  m=${manifests[$name]}; [ -n "$m" ] || continue
  written=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rows_written"])' "$work/$name.json")
  row=""
  while :; do
    row=$(sql "SELECT \"rows_loaded\", \"status\" FROM \"$schema\".\"load_ledger\" WHERE \"manifest_key\" = '$m'" || true)
    [ -n "$row" ] && break
    [ "$(date +%s)" -lt "$deadline" ] || break
    sleep 10
  done
  if [ -z "$row" ]; then fail "$name: not in $schema.load_ledger (warehouse-loader's log, and its dead-letter queue)"; continue; fi
  loaded=${row%%$'\t'*}
  if [ "$loaded" -le "$written" ] && [ "$loaded" -gt 0 ]; then
    pass "$name: loaded once, $loaded of $written rows merged (the rest superseded by newer input)"
  else
    fail "$name: ledger says $loaded rows loaded, the manifest $written written"
  fi
done
[ -n "${manifests[twin_a]}" ] && [ -n "${manifests[twin_b]}" ] \
  && [ "$(sql "SELECT COUNT(*) FROM \"$schema\".\"load_ledger\" WHERE \"manifest_key\" IN ('${manifests[twin_a]}', '${manifests[twin_b]}')" || echo 0)" = 2 ] \
  && pass "two files of one dataset at once: both in the ledger, once each" \
  || fail "two files of one dataset at once: not both in the ledger"

for q in RawEventsDeadLetterQueueUrl ManifestEventsDeadLetterQueueUrl NotifyDeadLetterQueueUrl; do
  url=$(output "$q")
  n=$(aws sqs get-queue-attributes --queue-url "$url" --attribute-names ApproximateNumberOfMessages \
    --query 'Attributes.ApproximateNumberOfMessages' --output text)
  [ "$n" = 0 ] && pass "$q: empty" || fail "$q: $n messages waiting"
done

echo "aws-smoke: $passed passed, $failed failed"
[ "$failed" = 0 ]
