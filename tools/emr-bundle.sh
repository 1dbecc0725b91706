#!/usr/bin/env bash
# Packs what EMR runs into one archive, flat: the `bondlake` binary, the `libduckdb.so` it links,
# the contracts, and the Spark jobs emr/backfill.py and emr/weekly_trends.py. emr-launcher's step fetches it to the primary node and
# spark-submit --archives unpacks it on every executor (bondlake_emr::StepCommand).
#   tools/emr-bundle.sh BINARY OUT.tar.gz [CONTRACTS_DIR]
set -euo pipefail
bin=$(realpath "${1:?usage: tools/emr-bundle.sh BINARY OUT.tar.gz [CONTRACTS_DIR]}")
out=$(realpath -m "${2:?usage: tools/emr-bundle.sh BINARY OUT.tar.gz [CONTRACTS_DIR]}")
contracts=$(realpath "${3:-$(dirname "$0")/../contracts}")
cd "$(dirname "$0")/.."
# The library the binary was linked against (bondlake-warehouse-duckdb's build puts it in
# ~/.cache/bondlake/ or BONDLAKE_LIBDUCKDB_DIR).
# awk reads to the end: exiting at the first match could leave ldd writing into a closed pipe, and
# under pipefail its SIGPIPE would end this script (2 runs in 300 on an idle machine; CI failed on it).
lib=$(ldd "$bin" 2>/dev/null | awk '/libduckdb\.so/ && $3 ~ /^\// && !found {found = $3} END {print found}')
[ -n "$lib" ] || lib=${BONDLAKE_LIBDUCKDB_DIR:+$BONDLAKE_LIBDUCKDB_DIR/libduckdb.so}
[ -n "$lib" ] || lib=$(find "${XDG_CACHE_HOME:-$HOME/.cache}/bondlake" -name libduckdb.so 2>/dev/null | sort | tail -1)
[ -f "$lib" ] || { echo "emr-bundle: libduckdb.so not found (build the workspace once, or set BONDLAKE_LIBDUCKDB_DIR)" >&2; exit 1; }
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$bin" "$stage/bondlake"
# Debug info is most of a release build's size; the nodes need none of it.
if command -v strip >/dev/null; then strip --strip-debug "$stage/bondlake"; fi
cp "$lib" "$stage/libduckdb.so"
mkdir "$stage/contracts"
cp "$contracts"/*.toml "$stage/contracts/"
cp emr/backfill.py emr/weekly_trends.py "$stage/"
chmod 755 "$stage/bondlake"
tar -czf "$out" -C "$stage" .
echo "emr-bundle: $out ($(du -h "$out" | cut -f1): bondlake, libduckdb.so, $(ls "$stage/contracts" | wc -l) contract files, backfill.py, weekly_trends.py)"
