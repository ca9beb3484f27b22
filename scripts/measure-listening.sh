#!/bin/bash
# Counts the Redis pub/sub connections one Duikou instance holds, idle and
# with 64 live screens open (8 referral-change streams for each of 8 demo
# clinicians, the per-user cap). Needs a Redis at 127.0.0.1:6379 (the run
# uses a key prefix of its own), redis-cli, curl and python3.
#
#   go build -o /tmp/duikou ./cmd/duikou && scripts/measure-listening.sh /tmp/duikou
set -euo pipefail
BIN=${1:?usage: $0 path/to/duikou}
PORT=${PORT:-18181}
DIR=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$DIR"' EXIT
"$BIN" -demo -listen 127.0.0.1:$PORT -data-dir "$DIR" -redis-url redis://127.0.0.1:6379/0 -redis-prefix "listen-$$" >"$DIR/log" 2>&1 &
PID=$!
for _ in $(seq 120); do curl -s 127.0.0.1:$PORT/readyz | grep -q ready && break; sleep 0.5; done
count() { redis-cli CLIENT LIST TYPE pubsub | grep -c "sub=" || true; }
idle=$(count)
for u in linxi.doctor baisha.doctor chengguan.doctor qiaotou.doctor shimen.doctor yunling.doctor sph.cardio sph.neuro; do
  token=$(curl -s -X POST 127.0.0.1:$PORT/api/v1/auth/login -H 'Content-Type: application/json' \
    -d "{\"username\":\"$u\",\"password\":\"duikou-demo-2026\"}" | python3 -c 'import sys,json; print(json.load(sys.stdin)["token"])')
  for k in $(seq 8); do
    (timeout 30 curl -sN 127.0.0.1:$PORT/api/v1/referrals/stream -H "Authorization: Bearer $token" >"$DIR/stream-$u-$k" || true) &
  done
done
sleep 3
ready=$(grep -l "event: ready" "$DIR"/stream-* | wc -l)
open=$(count)
echo "screens ready: $ready; Redis pub/sub connections: $idle with the instance idle, $open with the screens open"
curl -s 127.0.0.1:$PORT/metrics | grep -E "^duikou_pubsub_(channels|listeners)" || true
