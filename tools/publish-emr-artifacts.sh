#!/usr/bin/env bash
# Publishes what emr-launcher's step runs to the stack's artifacts bucket, after `sam deploy`:
#   s3://<ArtifactsBucketName>/bondlake/bondlake        the CLI, for the clusters' x86_64 nodes
#   s3://<ArtifactsBucketName>/bondlake/libduckdb.so    the embedded warehouse's library it links
#   s3://<ArtifactsBucketName>/bondlake/contracts/      the contracts the Lambda runs with
# cargo-lambda links with zig against an old glibc (2.17 unless told otherwise), so the binary
# runs on every EMR 7 image (Amazon Linux 2023, glibc 2.34). Needs cargo-lambda, zig and the
# x86_64 target (README, "Deploy"), and AWS credentials.
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
lib=$(find "$target" -name libduckdb.so -path '*bondlake-warehouse-duckdb*' | head -1)
[ -n "$lib" ] || { echo "libduckdb.so not found under $target (build the workspace once)" >&2; exit 1; }
aws s3 cp "$target/emr-artifacts/bondlake/bootstrap" "s3://$bucket/bondlake/bondlake"
aws s3 cp "$lib" "s3://$bucket/bondlake/libduckdb.so"
aws s3 sync --delete --exclude '*' --include '*.toml' "$contracts/" "s3://$bucket/bondlake/contracts/"
echo "published to s3://$bucket/bondlake/ (the next hand-off's step fetches it)"
