#!/usr/bin/env bash
# Shipping throughput: 1 GiB of archives (64 files of 16 MiB, random so
# nothing compresses) uploaded by `rollcall archive --s3-url` to a local
# moto_server with an Object Lock bucket. Measured, never asserted; not
# part of CI. Needs the virtualenv .ci/run makes (target/moto-venv).
# 2026-11-29, 2 shared cores under load: 1024 MiB in 13.2 s, 77.5 MiB/s.
set -euo pipefail
cd "$(dirname "$0")/.."
moto=${ROLLCALL_TEST_MOTO_SERVER:-target/moto-venv/bin/moto_server}
files=${FILES:-64}
mib=${MIB:-16}
cargo build --release --quiet
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$moto" -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
moto_pid=$!
trap 'kill $moto_pid; rm -rf "$work"' EXIT
until curl -s -o /dev/null "http://127.0.0.1:$port/"; do sleep 0.1; done
curl -s -f -X PUT -H 'x-amz-bucket-object-lock-enabled: true' "http://127.0.0.1:$port/bench" >/dev/null
mkdir -p "$work/log/archive"
for i in $(seq 1 "$files"); do
  day=$(date -u -d "2020-01-01 + $i days" +%F)
  head -c $((mib << 20)) /dev/urandom > "$work/log/archive/$day.jsonl.gz"
done
bytes=$(du -sb "$work/log/archive" | cut -f1)
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
start=$(date +%s.%N)
target/release/rollcall --dir "$work/log" archive \
  --s3-url s3://bench/rollcall --s3-endpoint "http://127.0.0.1:$port" --s3-lock-days 1 >/dev/null
end=$(date +%s.%N)
python3 -c "b=$bytes; t=$end-$start; print(f'shipped {b/2**20:.0f} MiB in {t:.1f} s: {b/2**20/t:.1f} MiB/s')"
