#!/usr/bin/env bash
# Runs each fuzz target (fuzz/fuzz_targets) for SECONDS (default 30) with libFuzzer, from the
# seed corpus that `bondlake gen` writes (clean and dirty files of each dataset). Any crash or
# failed assertion stops the run with the input that caused it under fuzz/artifacts/.
#   tools/fuzz.sh [SECONDS] [TARGET...]
# cargo-fuzz's sanitizers need a nightly compiler; with `-s none` it runs on stable (coverage
# instrumentation is a stable flag), which is what this script does.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(chunker values process kafka)
command -v c++ >/dev/null || { echo "fuzz: a C++ compiler is needed to build libFuzzer (apt-get install g++)" >&2; exit 1; }
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
# The CLI writes the seeds: the one the workspace built, else one on PATH.
bondlake="${BONDLAKE:-${CARGO_TARGET_DIR:-$HOME/.cache/bondlake-target}/release/bondlake}"
[ -x "$bondlake" ] || bondlake=$(command -v bondlake || true)
[ -x "$bondlake" ] || { echo "fuzz: the bondlake CLI is needed for the seeds (cargo build --release -p bondlake-cli)" >&2; exit 1; }
# Instrumented builds get a target folder of their own, kept between runs.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/bondlake-fuzz-target}"
# Seeds: small generated files, clean and dirty, plain and gzip; kept out of git.
seeds=fuzz/corpus-seeds
if [ ! -d "$seeds" ]; then
  mkdir -p "$seeds"
  n=0
  for dataset in investor_holdings market_daily weekly_series; do
    for dirty in 0 0.2; do
      for ext in csv csv.gz; do
        n=$((n + 1))
        "$bondlake" gen --dataset "$dataset" --rows 20 --dirty "$dirty" --seed "$n" --out "$seeds/$dataset-$n.$ext" 2>/dev/null
      done
    done
  done
fi
for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus"
  echo "fuzz: $target for ${seconds}s"
  log=$(mktemp)
  status=0
  (cd fuzz && cargo fuzz run -s none --release "$target" "corpus/$target" "corpus-seeds" -- \
    -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1) \
    >"$log" 2>&1 || status=$?
  grep -E "^(#[0-9]+ *DONE|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+== ERROR|.*panicked|SUMMARY|fuzz:)" "$log" || true
  # libFuzzer exits non-zero on a crash and leaves the input as an artifact.
  if ls fuzz/artifacts/"$target"/crash-* fuzz/artifacts/"$target"/timeout-* fuzz/artifacts/"$target"/oom-* >/dev/null 2>&1; then
    echo "fuzz: $target found an input that fails: $(ls fuzz/artifacts/"$target")" >&2
    exit 1
  fi
  # Non-zero without an artifact: the target did not build or run; that is a failure too.
  if [ "$status" -ne 0 ]; then
    tail -40 "$log" >&2
    echo "fuzz: $target did not build or run (exit $status)" >&2
    exit 1
  fi
  rm -f "$log"
done
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, no failures"
