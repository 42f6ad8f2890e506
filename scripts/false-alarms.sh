#!/usr/bin/env bash
# False alarms of the fingerprint rule (`min_group_growth`) against real,
# clean servers: a 60 s gate at 500 health checks/s, N times each, against
# etcd (Debian's etcd-server), a grpcio server and a Node grpc-js server.
# Any finding is a false alarm: none of these servers leaks.
#
#   scripts/false-alarms.sh 10                         # 10 runs each, the default gates
#   scripts/false-alarms.sh 10 --min-group-growth 2    # extra flags go to every run
#
# Installs what it needs (etcd-server from Debian, grpcio from PyPI,
# @grpc/grpc-js and grpc-health-check from npm, in a temporary directory).
# Uses the release build. Prints one line per run and a total per server.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10}
shift || true
extra=("$@")
command -v etcd >/dev/null 2>&1 || {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq etcd-server >/dev/null
}
python3 -c 'import grpc, grpc_health.v1' 2>/dev/null || python3 -m pip install --quiet grpcio grpcio-health-checking
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
(cd "$work" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund @grpc/grpc-js@1 grpc-health-check@2 >/dev/null)
cargo build --release -q
cat >"$work/gate.toml" <<TOML
name = "gate-60s"
description = "A 60 s CI gate: 500 health checks/s on one channel, then a drain"
[target]
ready_timeout = "20s"
[sampler]
interval = "250ms"
[[phases]]
name = "baseline"
duration = "5s"
  [[phases.workloads]]
  kind = "health_check"
  rate = 50
[[phases]]
name = "load"
duration = "60s"
  [[phases.workloads]]
  kind = "health_check"
  rate = 500
[[phases]]
name = "drain"
duration = "5s"
TOML

# Starts a server in the background; its port is the first line it prints.
start() {
  local out="$work/$1.out"; shift
  "$@" >"$out" 2>"$out.err" &
  pids+=($!)
  for _ in $(seq 1 100); do
    [ -s "$out" ] && { head -n1 "$out"; return; }
    sleep 0.1
  done
  echo "server $* printed no port" >&2; cat "$out.err" >&2; exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

etcd_port=$(free_port)
etcd --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$etcd_port" \
  --advertise-client-urls "http://127.0.0.1:$etcd_port" --listen-peer-urls "http://127.0.0.1:$(free_port)" \
  >"$work/etcd.log" 2>&1 &
pids+=($!)
py_port=$(start python python3 scripts/servers/health_server.py)
node_port=$(NODE_PATH="$work/node_modules" start node node scripts/servers/health_server.js)

total_false=0
for server in "etcd:$etcd_port" "grpcio:$py_port" "grpc-js:$node_port"; do
  name=${server%%:*}; port=${server##*:}
  alarms=0
  for i in $(seq 1 "$n"); do
    rm -rf "$work/run"
    if ./target/release/fdsoak run "$work/gate.toml" --target "127.0.0.1:$port" -q --out "$work/run" "${extra[@]}" >"$work/log" 2>&1; then
      echo "$name run $i: pass"
    else
      alarms=$((alarms + 1))
      echo "$name run $i: FINDING"; sed 's/^/    /' "$work/log"
    fi
  done
  echo "$name: $alarms false alarms in $n runs"
  total_false=$((total_false + alarms))
done
echo "total: $total_false false alarms"
[ "$total_false" -eq 0 ]
