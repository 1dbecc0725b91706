#!/usr/bin/env bash
# Publishes what emr-launcher's steps run to the stack's artifacts bucket, after `sam deploy`:
#   s3://<ArtifactsBucketName>/bondlake/bondlake-emr.tar.gz
# one archive, flat: the CLI for the clusters' x86_64 nodes, the libduckdb.so it links, the
# contracts the Lambda runs with, and emr/backfill.py (tools/emr-bundle.sh). A hand-off's step
# unpacks it on the primary node; a backfill's spark-submit --archives unpacks it on every executor.
# cargo-lambda links with zig against glibc 2.17 (its default), so the binary runs on every EMR 7
# image (Amazon Linux 2023, glibc 2.34); the script checks the binary's symbols say so. Needs
# cargo-lambda, zig and the x86_64 target (README, "Deploy"), and AWS credentials.
#   tools/publish-emr-artifacts.sh bondlake-dev [contracts-dir]
set -euo pipefail
stack=${1:?usage: tools/publish-emr-artifacts.sh STACK [CONTRACTS_DIR]}
contracts=${2:-contracts}
cd "$(dirname "$0")/.."
bucket=$(aws cloudformation describe-stacks --stack-name "$stack" \
  --query "Stacks[0].Outputs[?OutputKey=='ArtifactsBucketName'].OutputValue" --output text)
[ -n "$bucket" ] && [ "$bucket" != None ] || { echo "no ArtifactsBucketName output on $stack" >&2; exit 1; }
target="${CARGO_TARGET_DIR:-target}"
cargo lambda build --profile lambda --x86-64 --bin bondlake --lambda-dir "$target/emr-artifacts"
bin="$target/emr-artifacts/bondlake/bootstrap"
newest=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
case "$newest" in
  GLIBC_2.[0-9]|GLIBC_2.[12][0-9]|GLIBC_2.3[0-4]) echo "bondlake needs at most $newest (Amazon Linux 2023 has 2.34)" ;;
  *) echo "bondlake needs $newest, newer than Amazon Linux 2023's glibc 2.34: build it with cargo-lambda (zig)" >&2; exit 1 ;;
esac
tools/emr-bundle.sh "$bin" "$target/emr-artifacts/bondlake-emr.tar.gz" "$contracts"
aws s3 cp "$target/emr-artifacts/bondlake-emr.tar.gz" "s3://$bucket/bondlake/bondlake-emr.tar.gz"
echo "published to s3://$bucket/bondlake/ (the next step fetches it)"
