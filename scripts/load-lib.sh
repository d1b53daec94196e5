# Shared by the load runs (sourced): start a server, make a tenant with the
# vip-and-security rule active, and read wrk's figures.

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# start_serve BIN PORT DATA_DIR [DATABASE_URL]: starts `serve` in the background (its pid in
# $server_pid) and waits for /healthz.
start_serve() {
  local bin=$1 port=$2 data=$3 database=${4:-}
  SWITCHBOARD_ADMIN_TOKEN=load-admin SWITCHBOARD_DATABASE_URL=$database RUST_LOG=warn \
    "$bin" serve --listen "127.0.0.1:$port" --data-dir "$data" &
  server_pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return; sleep 0.1; done
  echo "serve on port $port did not start" >&2
  return 1
}

# setup_tenant BASE TENANT RULE.wasm: creates TENANT with a second admin and an intake key and
# activates RULE; sets $admin, $intake and $t (the tenant's URL).
setup_tenant() {
  local base=$1 id=$2 rule=$3 admin2 version
  admin=$(curl -sf -X POST "$base/v1/tenants" -H 'Authorization: Bearer load-admin' \
    -H 'Content-Type: application/json' -d "{\"id\":\"$id\",\"name\":\"Load test\"}" | json "['admin_key']")
  t="$base/v1/tenants/$id"
  admin2=$(curl -sf -X POST "$t/keys" -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
    -d '{"name":"second admin","role":"admin"}' | json "['key']")
  intake=$(curl -sf -X POST "$t/keys" -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
    -d '{"name":"intake","role":"intake"}' | json "['key']")
  version=$(curl -sf -X POST "$t/rules" -H "Authorization: Bearer $admin" -H 'Content-Type: application/wasm' \
    --data-binary "@$rule" | json "['version']")
  # Uploads compile in the background: wait until the version is no longer `compiling`.
  until curl -sf "$t/rules" -H "Authorization: Bearer $admin" | python3 -c \
    "import json,sys; v=[r for r in json.load(sys.stdin)['rules'] if r['version']==$version][0]; sys.exit(v['status']=='compiling')"; do
    sleep 0.1
  done
  curl -sf -X POST "$t/rules/$version/approve" -H "Authorization: Bearer $admin2" >/dev/null
  curl -sf -X POST "$t/rules/$version/activate" -H "Authorization: Bearer $admin2" >/dev/null
  rule_version=$version
}

# Requests/s and the 99th percentile latency in ms of a wrk --latency report.
rps() { sed -n 's/^Requests\/sec: *//p' "$1"; }
p99_ms() {
  sed -n 's/^ *99% *//p' "$1" | python3 -c "
import sys
v = sys.stdin.read().strip()
scale = {'us': 0.001, 'ms': 1, 's': 1000, 'm': 60000}
unit = next(u for u in ('us', 'ms', 'm', 's') if v.endswith(u))
print(round(float(v[: -len(unit)]) * scale[unit], 2))"
}
