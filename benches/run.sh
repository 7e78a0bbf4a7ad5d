#!/usr/bin/env bash
# Every benchmark in one run, on this machine: ingest (durable deliveries
# against the HTTP ceiling and the raw fdatasync rate, fixed-rate latency,
# start-up with a big log, tail -f delay, RSS), serve's memory with
# 100,000 and 1,000,000 memberships and dedup keys, and the read side (export
# of 1,000,000 records against jq, verify beside SHA-256 alone of the same
# bytes, archival against gzip -6), the merge's cost (two receivers' logs
# exported as one against one log alone) and
# the SQLite index (its build against DuckDB's read_json, its size, the
# read commands that answer from it). Measured, never asserted; not part of CI.
# Writes the tables to target/bench.md for docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v jq >/dev/null || need+=(jq)
[ -x /usr/bin/time ] || need+=(time)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${need[@]}"
fi
out=target/bench.md
mkdir -p target
{
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/ {print $2}') GiB, $(date -u +%F)."
  echo
  cargo bench --quiet --bench ingest
  echo
  cargo bench --quiet --bench memory
  echo
  cargo bench --quiet --bench export
  echo
  cargo bench --quiet --bench merge
  echo
  cargo bench --quiet --bench index
} | tee "$out"
echo "written to $out" >&2
