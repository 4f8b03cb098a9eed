#!/usr/bin/env python3
"""gRPC's own xDS client, unmodified, as a test peer. Runs in a fresh process per scenario
(gRPC keeps one XdsClient per target and process, with its cache).

  grpc_client_probe.py --xds-server 127.0.0.1:PORT --target xds:///HOST:PORT --count N
      makes N unary RPCs, one JSON line each on stdout, then a final {"done": ...} line.
  grpc_client_probe.py ... --follow
      makes RPCs back to back (a short pause between them) until stdin is closed or
      --max-seconds passed; one JSON line per RPC.
  --target may be repeated: one channel per target in this one process (gRPC then opens one
  ADS stream per target on one connection), the RPCs take turns over the channels.

The first RPC waits for the xDS resolution (wait_for_ready, --first-timeout). The others do
not wait_for_ready: an RPC fails as soon as the channel is in TRANSIENT_FAILURE, so a client
that loses its config shows up as a failed RPC. On any failure the probe also makes one RPC
without wait_for_ready and reports its status, which carries the xDS reason (for example
`CDS resource ... does not exist`).
"""
import argparse
import json
import os
import sys
import threading
import time

ECHO_METHOD = "/interop.Echo/Echo"


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--xds-server", required=True)
    ap.add_argument("--target", required=True, action="append")
    ap.add_argument("--node-id", default="interop-grpc-probe")
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--follow", action="store_true")
    ap.add_argument("--max-seconds", type=float, default=60.0)
    ap.add_argument("--first-timeout", type=float, default=10.0)
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--interval", type=float, default=0.02)
    ap.add_argument("--tls", metavar="CA,CERT,KEY",
                    help="reach the xDS server over TLS with this CA and client certificate "
                         "(gRFC A65 channel_creds type tls; CERT and KEY may be empty)")
    ap.add_argument("--namespace", help="the node's NAMESPACE metadata (a claim)")
    args = ap.parse_args()

    creds = [{"type": "insecure"}]
    if args.tls:
        ca, cert, key = args.tls.split(",")
        config = {"ca_certificate_file": ca}
        if cert:
            config.update(certificate_file=cert, private_key_file=key)
        creds = [{"type": "tls", "config": config}]
    bootstrap = {
        "xds_servers": [{"server_uri": args.xds_server, "channel_creds": creds,
                         "server_features": ["xds_v3"]}],
        "node": {"id": args.node_id, "cluster": "interop",
                 "locality": {"region": "local", "zone": "local-a"}},
    }
    if args.namespace:
        bootstrap["node"]["metadata"] = {"NAMESPACE": args.namespace}
    # Read when the channel's XdsClient is created: set before the channel.
    os.environ["GRPC_XDS_BOOTSTRAP_CONFIG"] = json.dumps(bootstrap)
    os.environ.pop("GRPC_XDS_BOOTSTRAP", None)
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")

    import grpc

    channels = [grpc.insecure_channel(t) for t in args.target]
    rpcs = [c.unary_unary(ECHO_METHOD) for c in channels]

    stop = threading.Event()
    if args.follow:
        def watch_stdin():
            sys.stdin.read()  # returns at EOF
            stop.set()
        threading.Thread(target=watch_stdin, daemon=True).start()

    failures = 0
    t_start = time.monotonic()
    i = 0
    while True:
        if args.follow:
            if stop.is_set() or time.monotonic() - t_start > args.max_seconds:
                break
        elif i >= args.count:
            break
        k = i % len(rpcs)
        rpc, target = rpcs[k], args.target[k]
        first = i < len(rpcs)
        t = time.monotonic()
        try:
            reply = rpc(f"req-{i}".encode(), timeout=args.first_timeout if first else args.timeout,
                        wait_for_ready=True if first else False)
            backend, _, echoed = reply.partition(b":")
            ok = echoed == f"req-{i}".encode()
            rec = {"i": i, "target": target, "ok": ok, "backend": backend.decode(), "t": t}
            if not ok:
                rec["reply"] = reply.decode(errors="replace")
        except grpc.RpcError as e:
            rec = {"i": i, "target": target, "ok": False, "code": e.code().name, "details": e.details(), "t": t}
        if not rec["ok"]:
            failures += 1
            # The reason is only in the status of an RPC that does not wait for ready.
            try:
                rpc(b"diagnostic", timeout=2, wait_for_ready=False)
                rec["diagnostic"] = "OK"
            except grpc.RpcError as e:
                rec["diagnostic"] = f"{e.code().name}: {e.details()}"
        emit(rec)
        i += 1
        if args.follow:
            stop.wait(args.interval)
    emit({"done": True, "rpcs": i, "failures": failures})
    for c in channels:
        c.close()


if __name__ == "__main__":
    main()
