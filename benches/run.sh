#!/usr/bin/env bash
# Every benchmark in one run, on this machine, for docs/performance.md:
# - ingest: durable deliveries against the HTTP ceiling (a no-op warp
#   endpoint) and the raw fdatasync rate, fixed-rate latency, start-up
#   with 1,000,000 records, tail -f delay, RSS;
# - memory: serve's RSS with 100,000 and 1,000,000 memberships and dedup
#   keys, and a start on 10,000,000 records;
# - the read side on 1,100,000 and 10,000,000 records: export (CSV,
#   jsonl) and verify beside SHA-256 alone of the same bytes, with jq and
#   archival against gzip -6 on the smaller;
# - the merge's cost (two receivers' logs exported as one against one);
# - the SQLite index at 1,000,000 and 10,000,000 records (its build
#   against DuckDB's read_json, its size, the read commands that answer
#   from it) and the console's pages while deliveries arrive, at both
#   sizes; and what serve's indexer costs ingest (this build beside
#   itself with --no-index).
# With ROLLCALL_BENCH_BASELINE=PATH (a release build of an earlier
# commit), ingest, memory and the read side measure it beside this
# build, alternating. ROLLCALL_BENCH_LARGE=0 leaves out the 10,000,000-
# record runs (most of the hour this takes). Measured, never asserted;
# not part of CI. Writes the tables to target/bench.md.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v jq >/dev/null || need+=(jq)
[ -x /usr/bin/time ] || need+=(time)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${need[@]}"
fi
large=${ROLLCALL_BENCH_LARGE:-1}
read_sizes=1100000 index_sizes=1000000 startup=()
if [ "$large" = 1 ]; then
  read_sizes+=" 10000000" index_sizes+=" 10000000"
  startup=(env ROLLCALL_BENCH_STARTUP_RECORDS=10000000)
fi
out=target/bench.md
mkdir -p target
{
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/ {print $2}') GiB, $(date -u +%F)."
  echo
  ROLLCALL_BENCH_ROUNDS=${ROLLCALL_BENCH_ROUNDS:-3} cargo bench --quiet --bench ingest
  # What serve's indexer costs ingest: this build beside itself with
  # --no-index, as the baseline.
  echo
  printf '#!/bin/sh\nexec "%s" "$@" --no-index\n' "$PWD/target/release/rollcall" > target/rollcall-no-index
  chmod +x target/rollcall-no-index
  ROLLCALL_BENCH_BASELINE="$PWD/target/rollcall-no-index" ROLLCALL_BENCH_ROUNDS=${ROLLCALL_BENCH_ROUNDS:-3} \
    cargo bench --quiet --bench ingest
  echo
  "${startup[@]}" cargo bench --quiet --bench memory
  for records in $read_sizes; do
    echo
    ROLLCALL_BENCH_RECORDS=$records cargo bench --quiet --bench export
  done
  # The merge, the index and the console have no earlier build to be
  # measured beside: the baseline is for the three above.
  echo
  env -u ROLLCALL_BENCH_BASELINE cargo bench --quiet --bench merge
  for records in $index_sizes; do
    echo
    ROLLCALL_BENCH_RECORDS=$records env -u ROLLCALL_BENCH_BASELINE cargo bench --quiet --bench index
  done
  for records in $index_sizes; do
    echo
    ROLLCALL_BENCH_RECORDS=$records env -u ROLLCALL_BENCH_BASELINE cargo bench --quiet --bench console
  done
} | tee "$out"
echo "written to $out" >&2
