#!/bin/bash
# Usage: swift build -c release --product ChatServer && Benchmarks/chat-load-compare.sh
# Runs Benchmarks/chat-load.py against the release ChatServer: one instance without Redis, then two
# instances on one Redis (separate ports, and one shared port with --reuse-port).
set -u
BIN=${BIN:-.build/release/ChatServer}
LOAD=$(dirname "$0")/chat-load.py
CLIENTS=${CLIENTS:-100}; SENDERS=${SENDERS:-10}; SECONDS_=${SECS:-10}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; pids=(); }
echo "# $(date -u +%FT%TZ), $(nproc) cores shared with other builds, $(redis-server --version | cut -d' ' -f3)"
$BIN --port 18281 --rate-limit 1000000 >/dev/null 2>&1 & pids+=($!); sleep 1
python3 $LOAD --label "1 instance, no Redis:           " --ports 18281 --clients $CLIENTS --senders $SENDERS --seconds $SECONDS_
cleanup
redis-server --port 16398 --bind 127.0.0.1 --save '' --appendonly no --loglevel warning >/dev/null 2>&1 & pids+=($!); sleep 0.5
$BIN --port 18282 --redis redis://127.0.0.1:16398 --rate-limit 1000000 >/dev/null 2>&1 & pids+=($!)
$BIN --port 18283 --redis redis://127.0.0.1:16398 --rate-limit 1000000 >/dev/null 2>&1 & pids+=($!); sleep 1
python3 $LOAD --label "2 instances, one Redis:          " --ports 18282,18283 --clients $CLIENTS --senders $SENDERS --seconds $SECONDS_
$BIN --port 18284 --reuse-port --redis redis://127.0.0.1:16398/1 --rate-limit 1000000 >/dev/null 2>&1 & pids+=($!)
$BIN --port 18284 --reuse-port --redis redis://127.0.0.1:16398/1 --rate-limit 1000000 >/dev/null 2>&1 & pids+=($!); sleep 1
python3 $LOAD --label "2 instances, one port (reuse):   " --ports 18284 --clients $CLIENTS --senders $SENDERS --seconds $SECONDS_
cleanup
