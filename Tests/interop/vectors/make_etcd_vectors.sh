#!/usr/bin/env bash
# Byte vectors of etcd v3 responses, made by etcd itself, for fastpilot's hand-written etcd codec
# (Sources/FastPush/Proto/Etcd). Writes Tests/FastPushTests/Store/EtcdVectors.swift (or the
# file named by $1), which Tests/FastPushTests/Store/EtcdCodecTests.swift decodes.
#
#   Tests/interop/vectors/make_etcd_vectors.sh [OUT.swift]
#
# Needs etcd and etcdctl (Debian's etcd-server and etcd-client; made with 3.4.23) and python3
# (only to pick free loopback ports). It starts a throwaway single-member etcd on two free
# 127.0.0.1 ports with its data in a temporary directory, runs the fixed sequence below through
# `etcdctl -w protobuf` (which prints the response message's bytes), stops etcd and removes the
# directory. The sequence starts on a fresh member (revision 1), so every revision is known:
#
#   put        K/a  A1            -> put_a        revision 2
#   put        K/b  b1            -> put_b        revision 3
#   put --prev-kv K/a A2          -> put_a_prev   revision 4, prev_kv a@2
#   put        /other/key z       -> (not kept)   revision 5, outside the prefix
#   get --prefix K/               -> range_prefix header 5: a (2,4,v2) and b (3,3,v1), count 2
#   get        K/missing          -> range_empty  header 5: no kvs, count 0
#   del --prev-kv K/b             -> delete_prev  revision 6, deleted 1, prev_kvs b@3
#   del        K/missing          -> delete_none  header 6, deleted 0
#   txn mod(K/c) = 0 ? put K/c c1 : get K/c      -> txn_ok   revision 7, succeeded, [put]
#   txn mod(K/a) = 2 ? put K/a no : get K/a      -> txn_fail header 7, failed, [range a@4]
#   watch --rev 1 --prefix K/     -> watch_all    header 7, events put a@2, put b@3, put a@4,
#                                                 delete b@6, put c@7
#   compact 6; watch --rev 2 --prefix K/ -> watch_compacted  canceled, compact_revision 6
#
# K is /fastpilot/serviceentries/demo. cluster_id and member_id (in every header) differ per run;
# the tests check only what is deterministic, and that re-encoding the decoded message gives
# back the same bytes. etcdctl prints a watch response rebuilt from the client's view (header,
# events, compact_revision, canceled, created): watch_id and cancel_reason are not in it.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
out=${1:-$root/Tests/FastPushTests/Store/EtcdVectors.swift}
etcd_bin=${ETCD_BINARY:-etcd}
etcdctl_bin=${ETCDCTL_BINARY:-etcdctl}
export ETCDCTL_API=3

work=$(mktemp -d /tmp/fastpilot-etcd-vectors-XXXXXX)
etcd_pid=""
watch_pid=""
cleanup() {
    if [[ -n "$watch_pid" ]]; then kill "$watch_pid" 2>/dev/null || true; fi
    if [[ -n "$etcd_pid" ]]; then
        kill "$etcd_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$etcd_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$etcd_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

free_ports() {
    python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
for s in socks: s.close()'
}

# Start etcd; on a port clash (another process took a port first) start again on new ports.
client_port=""
for attempt in 1 2 3 4 5; do
    read -r client_port peer_port < <(free_ports)
    rm -rf "$work/data"
    "$etcd_bin" --name vectors --data-dir "$work/data" \
        --listen-client-urls "http://127.0.0.1:$client_port" --advertise-client-urls "http://127.0.0.1:$client_port" \
        --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
        --initial-cluster "vectors=http://127.0.0.1:$peer_port" >"$work/etcd.log" 2>&1 &
    etcd_pid=$!
    healthy=""
    for _ in $(seq 100); do
        if ! kill -0 "$etcd_pid" 2>/dev/null; then break; fi
        if "$etcdctl_bin" --endpoints "127.0.0.1:$client_port" --dial-timeout 1s endpoint health >/dev/null 2>&1; then
            healthy=1; break
        fi
        sleep 0.1
    done
    if [[ -n "$healthy" ]]; then break; fi
    kill "$etcd_pid" 2>/dev/null || true
    wait "$etcd_pid" 2>/dev/null || true
    etcd_pid=""
    echo "etcd did not start (attempt $attempt):" >&2
    tail -n 5 "$work/etcd.log" >&2
done
if [[ -z "$etcd_pid" ]]; then echo "giving up: etcd does not start" >&2; exit 1; fi

ctl() { "$etcdctl_bin" --endpoints "127.0.0.1:$client_port" "$@"; }
K=/fastpilot/serviceentries/demo
A1='{"metadata":{"name":"a","namespace":"demo"}}'
A2='{"metadata":{"name":"a","namespace":"demo"},"spec":{"hosts":["a.demo"]}}'
names=()

# A vector: the protobuf output of one etcdctl call, into $work/NAME.bin.
vector() {
    local name=$1; shift
    ctl "$@" -w protobuf >"$work/$name.bin"
    names+=("$name")
}

vector put_a put "$K/a" "$A1"
vector put_b put "$K/b" b1
vector put_a_prev put --prev-kv "$K/a" "$A2"
ctl put /other/key z >/dev/null
vector range_prefix get --prefix "$K/"
vector range_empty get "$K/missing"
vector delete_prev del --prev-kv "$K/b"
vector delete_none del "$K/missing"
printf 'mod("%s") = "0"\n\nput %s c1\n\nget %s\n\n' "$K/c" "$K/c" "$K/c" >"$work/txn_ok.in"
vector txn_ok txn <"$work/txn_ok.in"
printf 'mod("%s") = "2"\n\nput %s no\n\nget %s\n\n' "$K/a" "$K/a" "$K/a" >"$work/txn_fail.in"
vector txn_fail txn <"$work/txn_fail.in"

# A watch never ends by itself: wait (bounded) until its one response is out and the output has
# stopped growing, then stop it. A replay of history this small comes in one response.
# etcdctl itself in the background (not through the function), so that $! is its pid.
"$etcdctl_bin" --endpoints "127.0.0.1:$client_port" watch --rev 1 --prefix "$K/" -w protobuf \
    >"$work/watch_all.bin" 2>"$work/watch.err" &
watch_pid=$!
last=-1
for _ in $(seq 100); do
    size=$(stat -c %s "$work/watch_all.bin")
    if [[ "$size" -gt 0 && "$size" -eq "$last" ]]; then break; fi
    last=$size
    sleep 0.2
done
kill "$watch_pid" 2>/dev/null || true
wait "$watch_pid" 2>/dev/null || true
watch_pid=""
if [[ ! -s "$work/watch_all.bin" ]]; then echo "the watch printed nothing" >&2; cat "$work/watch.err" >&2; exit 1; fi
names+=(watch_all)

ctl compact 6 >/dev/null
# The server cancels a watch from a compacted revision; etcdctl prints that response and exits
# (bounded all the same).
timeout 10 "$etcdctl_bin" --endpoints "127.0.0.1:$client_port" watch --rev 2 --prefix "$K/" -w protobuf \
    >"$work/watch_compacted.bin" 2>/dev/null || true
if [[ ! -s "$work/watch_compacted.bin" ]]; then echo "the compacted watch printed nothing" >&2; exit 1; fi
names+=(watch_compacted)

etcd_version=$("$etcd_bin" --version | head -n 1)
etcdctl_version=$("$etcdctl_bin" version | head -n 1)

{
    echo "// Generated by Tests/interop/vectors/make_etcd_vectors.sh: etcd's own response bytes, printed by"
    echo "// \`etcdctl -w protobuf\` against a throwaway member ($etcd_version, $etcdctl_version)."
    echo "// Do not edit by hand; re-run the script (the sequence and expected values are in its header)."
    echo "// cluster_id and member_id in the headers differ per run; everything else is deterministic."
    echo ""
    echo "enum EtcdVectors {"
    for name in "${names[@]}"; do
        camel=$(echo "$name" | awk -F_ '{ printf "%s", $1; for (i = 2; i <= NF; i++) printf "%s%s", toupper(substr($i, 1, 1)), substr($i, 2) }')
        echo "    static let $camel: [UInt8] = ["
        od -An -v -tx1 "$work/$name.bin" | awk '{ line = "       "; for (i = 1; i <= NF; i++) line = line " 0x" $i ","; print line }'
        echo "    ]"
    done
    echo ""
    echo "    static let all: [(name: String, bytes: [UInt8])] = ["
    for name in "${names[@]}"; do
        camel=$(echo "$name" | awk -F_ '{ printf "%s", $1; for (i = 2; i <= NF; i++) printf "%s%s", toupper(substr($i, 1, 1)), substr($i, 2) }')
        echo "        (\"$name\", $camel),"
    done
    echo "    ]"
    echo "}"
} >"$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out (${#names[@]} vectors)"
