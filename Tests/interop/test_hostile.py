"""Hostile clients on the xDS port: bytes that are not HTTP/2, HTTP/2 protocol violations,
malformed DiscoveryRequests, oversized messages and floods. For each, what the server does to
the bad connection (closed, GOAWAY code, gRPC status, stream reset), that its memory stays
bounded, and that a well-behaved Envoy-style client connected before the attack still gets
an EDS push for a registry change made after it.

All traffic goes to 127.0.0.1; every loop has a fixed bound and every wait a timeout.

Memory bound (RSS_SLACK_MB): one hostile connection may make the server hold at most
  16 MiB of nghttp2 session memory (H2Settings.maxSessionMemory: queued frames, streams, HPACK)
+ 16 MiB of partial gRPC messages (GRPCServerConnection.maxBufferedBytes)
+ about 10 MiB for 4096 open ADS streams (server objects per stream, measured)
plus malloc's arenas keeping freed memory. 64 MiB over the RSS measured just before the attack
covers that; without the limits the same attacks grew the server by 160-250 MB and more, with
no bound but the client's patience.
"""
import os
import struct
import threading
import time

import grpc
import pytest
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import struct_pb2

import h2raw
from conftest import endpoint, service_entry
from h2raw import (CONTINUATION, ENHANCE_YOUR_CALM, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR, GOAWAY, HEADERS,
                   INTERNAL_ERROR, PROTOCOL_ERROR, REFUSED_STREAM, RST_STREAM, H2Raw, data_frame, error_name,
                   frame, grpc_message, grpc_request_fields, header_block, headers_frame, hpack_int, ping_frame,
                   rst_frame, settings_frame, window_update_frame)
from xds_client import ADS_METHOD, CDS, EDS, AdsStream, EnvoyClient, cla_endpoints, make_node, unpack

NS = "interop"
ECHO = "echo.interop.svc.cluster.local"
CLUSTER = f"outbound|8080||{ECHO}"
RSS_SLACK_MB = 64
CLOSE_TIMEOUT = 10.0   # the server closes within 5 s even when the peer does not read


def echo_items(port):
    return [service_entry("echo", NS, ECHO, [(8080, "grpc")], [endpoint("grpc", port, "region-a/zone-a")])]


def rss_mb(fp):
    with open(f"/proc/{fp.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class Bystander:
    """An Envoy-style client (wildcard CDS/LDS, EDS and RDS by name) connected before the attack.
    `check_push()` changes the registry and expects the EDS push with the new endpoint."""

    def __init__(self, fp, registry, channel=None, name="bystander"):
        self.fp = fp
        self.registry = registry
        self.port = 15100
        registry.write(echo_items(self.port))
        self.client = EnvoyClient(fp.xds_address, make_node(name, namespace=NS), channel=channel)
        self.client.start()
        self.client.expect_silence(0.2)

    def check_push(self, timeout=10.0):
        self.port += 1
        self.registry.write(echo_items(self.port))
        deadline = time.monotonic() + timeout
        while True:
            r = self.client.recv(EDS, timeout=max(deadline - time.monotonic(), 0.1))
            self.client.handle(r)
            [cla] = unpack(r)
            got = set(cla_endpoints(cla).get(("region-a", "zone-a", ""), {}))
            if got == {f"127.0.0.1:{self.port}"}:
                return
            assert time.monotonic() < deadline, f"EDS push for port {self.port} never came: {got}\n{self.client.dump()}"

    def close(self):
        self.client.close()


@pytest.fixture
def server(fastpilot_factory, registry):
    registry.write(echo_items(15100))
    return fastpilot_factory(registry, log_level="info")


@pytest.fixture
def bystander(server, registry):
    b = Bystander(server, registry)
    yield b
    b.close()


@pytest.fixture
def raw(server):
    """open(**kw) -> an H2Raw connection to the server; all are closed after the test."""
    opened = []

    def open_(**kw):
        c = H2Raw(server.xds_address, **kw)
        opened.append(c)
        return c

    yield open_
    for c in opened:
        c.close()


def check_rss(fp, base, what, peak=None):
    """Asserts the RSS bound, and prints what was observed (pytest -s shows it)."""
    now = rss_mb(fp) if peak is None else peak
    print(f"\nRSS {what}: {base:.1f} MB before, {now:.1f} MB after (+{now - base:.1f}, bound +{RSS_SLACK_MB})")
    assert now < base + RSS_SLACK_MB, f"RSS {base:.0f} -> {now:.0f} MB ({what})"


def assert_healthy(fp):
    """/ready answers, and a new client gets CDS."""
    status, _ = fp.http_get("/ready")
    assert status == 200
    s = AdsStream(fp.xds_address, make_node("after-attack", namespace=NS))
    try:
        s.send(CDS, [])
        assert unpack(s.recv(CDS, timeout=5))
    finally:
        s.close()


def one_error_line(fp, peer, timeout=5.0, settle=0.3):
    """The single h2_connection_error line for `peer` (and no other line naming it)."""
    fp.wait_log(rf"event=h2_connection_error peer={peer} ", timeout=timeout)
    time.sleep(settle)
    lines = fp.find_log(rf"peer={peer}( |$)")
    assert len(lines) == 1, f"expected exactly one log line naming {peer}:\n" + "\n".join(lines[:10])
    return lines[0]


def handshake(c):
    """Reads the server's SETTINGS (our preface went out when the connection opened)."""
    f = c.wait_for(lambda f: f.type == h2raw.SETTINGS and not f.flags & h2raw.ACK, timeout=5)
    assert f is not None, c.summary()
    # nghttp2 advertises what fastpilot asked for.
    assert dict(f.settings()).get(h2raw.MAX_CONCURRENT_STREAMS) == 4096, f.settings()


def goaway_of(c, timeout=CLOSE_TIMEOUT):
    """Waits for the server to close the connection; returns its (only) GOAWAY frame."""
    assert c.wait_closed(timeout), f"connection still open after {timeout}s: {c.summary()}"
    gs = c.goaways()
    assert len(gs) == 1, c.summary()
    return gs[0]


# --------------------------------------------------------------------------------------------
# 1. not HTTP/2 at all

TLS_CLIENT_HELLO = bytes.fromhex(
    "16030100a5"  # record: handshake, TLS 1.0, length
    "010000a1" "0303" + "11" * 32 + "00" "0020" + "c02b" * 16 + "01" "00" "0058" + "00" * 88)


@pytest.mark.parametrize("chunks", [
    [b"\x00\xff\x13\x37 not a preface, just noise" * 4],
    [b"GET / HTTP/1.1\r\nHost: fastpilot\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\n"],
    [b"POST /envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources HTTP/1.1\r\n"
     b"Host: x\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"],
    [TLS_CLIENT_HELLO],
    # Many small writes: several reads on the server side, still one log line.
    [b"GET / HTTP/1.1\r\n"] * 50,
], ids=["garbage", "http1", "http1-upgrade", "tls-client-hello", "http1-in-pieces"])
def test_not_http2_is_closed_with_one_log_line(chunks, server, bystander, raw):
    c = raw(preface=False, ack_server_settings=False)
    for chunk in chunks:
        if not c.send(chunk):
            break
    t0 = time.monotonic()
    assert c.wait_closed(5), f"not closed within 5s: {c.summary()}"
    assert time.monotonic() - t0 < 5
    # Not HTTP/2: nothing but the server's own preface (SETTINGS and the connection window),
    # sent before it read anything; no GOAWAY to a peer that does not speak HTTP/2.
    assert all(f.type in (h2raw.SETTINGS, h2raw.WINDOW_UPDATE) and f.stream_id == 0 for f in c.frames), c.summary()
    line = one_error_line(server, c.local)
    assert "magic" in line, line
    bystander.check_push()


def test_silent_or_partial_preface_is_closed_after_the_handshake_timeout(server, bystander, raw):
    """A client that connects and says nothing (or half a preface) does not keep its connection:
    closed after the 10 s handshake timeout, one log line each."""
    silent = raw(preface=False, ack_server_settings=False)
    half = raw(preface=False, ack_server_settings=False)
    assert half.send(h2raw.PREFACE[:10])
    t0 = time.monotonic()
    assert silent.wait_closed(15) and half.wait_closed(15), f"{silent.summary()}\n{half.summary()}"
    assert 8 < time.monotonic() - t0 < 15
    for c in (silent, half):
        assert "preface" in one_error_line(server, c.local)
    bystander.check_push()


# --------------------------------------------------------------------------------------------
# 2. HTTP/2 protocol violations

@pytest.mark.parametrize("frames, code", [
    ([data_frame(0, b"abc")], PROTOCOL_ERROR),
    ([headers_frame(2, grpc_request_fields())], PROTOCOL_ERROR),
    ([data_frame(5, b"x")], PROTOCOL_ERROR),
    ([rst_frame(7)], PROTOCOL_ERROR),
    ([settings_frame([(h2raw.ENABLE_PUSH, 2)])], PROTOCOL_ERROR),
    ([settings_frame([(h2raw.MAX_FRAME_SIZE, 100)])], PROTOCOL_ERROR),
    ([settings_frame([(h2raw.INITIAL_WINDOW_SIZE, 1 << 31)])], FLOW_CONTROL_ERROR),
    ([headers_frame(1, grpc_request_fields(), end_headers=False), data_frame(1, b"\0")], PROTOCOL_ERROR),
    ([headers_frame(1, grpc_request_fields(), end_headers=False), ping_frame()], PROTOCOL_ERROR),
    ([window_update_frame(0, 0)], PROTOCOL_ERROR),
    ([headers_frame(1, grpc_request_fields()), window_update_frame(1, 0)], PROTOCOL_ERROR),
    ([frame(h2raw.PING, 0, 0, b"short")], FRAME_SIZE_ERROR),
    ([frame(CONTINUATION, h2raw.END_HEADERS, 1, header_block([("x", "y")]))], PROTOCOL_ERROR),
], ids=["data-on-stream-0", "headers-on-even-stream", "data-on-idle-stream", "rst-on-idle-stream",
        "settings-enable-push-2", "settings-max-frame-size-100", "settings-window-2^31",
        "headers-without-end-headers-then-data", "headers-without-end-headers-then-ping",
        "window-update-0-connection", "window-update-0-stream", "ping-of-5-bytes",
        "continuation-without-headers"])
def test_protocol_violation_gets_goaway_and_close(frames, code, server, bystander, raw):
    c = raw()
    handshake(c)
    c.send(b"".join(frames))
    g = goaway_of(c)
    last, got, debug = g.goaway()
    assert got == code, f"GOAWAY {error_name(got)} ({debug!r}), expected {error_name(code)}\n{c.summary()}"
    line = one_error_line(server, c.local)
    assert "GOAWAY" in line and error_name(code) in line, line
    bystander.check_push()


def test_headers_on_a_lower_stream_id_are_ignored(server, bystander, raw):
    """HEADERS on stream 1 after stream 3 opened: stream 1 is closed by then (RFC 9113 5.1.1), and
    nghttp2 ignores HEADERS on a closed stream (they may be trailers racing our reset) rather
    than ending the connection: no stream is opened, nothing is held, the connection goes on."""
    c = raw()
    handshake(c)
    c.send(headers_frame(3, grpc_request_fields()) + headers_frame(1, grpc_request_fields()))
    assert c.wait_for(lambda f: f.type == HEADERS and f.stream_id == 3) is not None, c.summary()
    c.read_for(0.5)
    assert not c.of_type(HEADERS, 1) and not c.of_type(RST_STREAM, 1) and not c.goaways(), c.summary()
    c.send(headers_frame(5, grpc_request_fields()))
    assert c.wait_for(lambda f: f.type == HEADERS and f.stream_id == 5) is not None, c.summary()
    assert not server.find_log(r"event=h2_connection_error")
    bystander.check_push()


# --------------------------------------------------------------------------------------------
# 3. and 4. malformed DiscoveryRequests and oversized messages: a gRPC status, the stream
# ends, and the same HTTP/2 connection goes on serving its other streams.

def valid_request(**kw):
    return discovery_pb2.DiscoveryRequest(type_url=CDS, node=make_node("raw-sender", namespace=NS), **kw)


def _ld(field, payload):
    """A length-delimited field."""
    return hpack_varint_key(field) + _varint(len(payload)) + payload


def _varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def hpack_varint_key(field):
    return _varint(field << 3 | 2)


def nested_metadata(depth):
    """A DiscoveryRequest whose node.metadata has Structs nested `depth` levels deep, encoded by
    hand (protobuf itself refuses to build it past its own depth limit)."""
    value = _ld(3, b"leaf")                                   # Value.string_value
    for _ in range(depth):
        struct = _ld(1, _ld(1, b"nest") + _ld(2, value))      # Struct.fields: map entry {key, value}
        value = _ld(5, struct)                                # Value.struct_value
    metadata = _ld(1, _ld(1, b"nest") + _ld(2, value))
    node = _ld(1, b"deep") + _ld(3, metadata)                 # Node.id, Node.metadata
    return _ld(2, node) + _ld(4, CDS.encode())                # DiscoveryRequest.node, type_url


BAD_REQUESTS = {
    "truncated-varint": (valid_request().SerializeToString() + b"\x80", grpc.StatusCode.INVALID_ARGUMENT,
                         "truncated varint"),
    "varint-too-long": (b"\x78" + b"\xff" * 11, grpc.StatusCode.INVALID_ARGUMENT, "malformed varint"),
    "wrong-wire-type": (b"\x20\x01" + valid_request().SerializeToString(), grpc.StatusCode.INVALID_ARGUMENT,
                        "field 4 has wire type"),
    "length-past-end": (b"\x22\x40" + b"type.googleapis.com/", grpc.StatusCode.INVALID_ARGUMENT,
                        "runs past the end"),
    "invalid-utf8": (b"\x22\x02\xff\xfe", grpc.StatusCode.INVALID_ARGUMENT, "not valid UTF-8"),
    "group-wire-type": (b"\x0b\x0c", grpc.StatusCode.INVALID_ARGUMENT, "invalid wire type 3"),
    "field-number-0": (b"\x02\x00", grpc.StatusCode.INVALID_ARGUMENT, "field number 0"),
    "metadata-nested-too-deep": (nested_metadata(40), grpc.StatusCode.INVALID_ARGUMENT, "nested deeper than"),
    "unknown-type-url": (discovery_pb2.DiscoveryRequest(
        type_url="type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
        node=make_node("secret-asker", namespace=NS)).SerializeToString(),
        grpc.StatusCode.INVALID_ARGUMENT, "unknown type_url"),
    "first-request-without-node": (discovery_pb2.DiscoveryRequest(type_url=CDS).SerializeToString(),
                                   grpc.StatusCode.INVALID_ARGUMENT, "must carry node"),
    "over-4mib": (discovery_pb2.DiscoveryRequest(type_url=EDS, resource_names=["x" * 1024] * (4 * 1024 + 16),
                                                 node=make_node("huge", namespace=NS)).SerializeToString(),
                  grpc.StatusCode.RESOURCE_EXHAUSTED, "larger than max"),
}


def raw_call(channel, payload, timeout=10.0):
    """Sends `payload` as the only message of an ADS stream (kept open: no half-close), and
    returns the stream's final (code, details)."""
    done = threading.Event()

    def requests():
        yield payload
        done.wait(timeout)

    call = channel.stream_stream(ADS_METHOD, request_serializer=None, response_deserializer=None)
    it = call(requests(), timeout=timeout)
    try:
        for _ in it:
            pass
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details()
    finally:
        done.set()


@pytest.mark.parametrize("case", list(BAD_REQUESTS), ids=list(BAD_REQUESTS))
def test_malformed_request_ends_its_stream_and_the_connection_serves_on(case, server, registry):
    """The bad stream and the bystander share one gRPC channel, so one HTTP/2 connection."""
    payload, code, phrase = BAD_REQUESTS[case]
    channel = grpc.insecure_channel(server.xds_address, options=[("grpc.use_local_subchannel_pool", 1)])
    b = Bystander(server, registry, channel=channel, name=f"same-connection-{case}")
    try:
        got, details = raw_call(channel, payload)
        assert got == code, (got, details)
        assert phrase in details, details
        # The same connection: the server logged the bad request from the bystander's peer.
        connect = server.wait_log(rf"event=ads_connect conn=same-connection-{case}", timeout=5)[0]
        peer = connect.split("peer=")[1].split()[0]
        # (wait_log: the log reader may lag behind the status the client already has)
        server.wait_log(rf"event=(ads_bad_request|ads_stream_closed|grpc_stream_rejected) peer={peer} ", timeout=5)
        b.check_push()
        # And new streams still open on it.
        again = AdsStream(server.xds_address, make_node("second-on-channel", namespace=NS), channel=channel)
        again.send(CDS, [])
        assert unpack(again.recv(CDS, timeout=5))
        again.close()
        assert not server.find_log(r"event=h2_connection_error")
    finally:
        b.close()
        channel.close()


def test_compressed_message_is_unimplemented_and_announced_oversize_is_rejected_at_once(server, bystander, raw):
    """Raw frames: a message with the compressed flag gets UNIMPLEMENTED; a prefix announcing
    5 MiB gets RESOURCE_EXHAUSTED before any of its body is sent; both as trailers (the streams
    end) while the connection stays open."""
    c = raw()
    handshake(c)
    c.send(headers_frame(1, grpc_request_fields()) + data_frame(1, b"\x01\x00\x00\x00\x03abc"))
    c.send(headers_frame(3, grpc_request_fields()) + data_frame(3, b"\x00" + struct.pack(">I", 5 << 20)))
    # Each stream: response HEADERS, then trailers (HEADERS with END_STREAM), then RST_STREAM
    # NO_ERROR since we never half-closed.
    for sid in (1, 3):
        f = c.wait_for(lambda f, sid=sid: f.stream_id == sid and f.type == HEADERS and f.flags & h2raw.END_STREAM)
        assert f is not None, c.summary()
    assert not c.closed and not c.goaways(), c.summary()
    lines = server.wait_log(rf"event=grpc_stream_rejected peer={c.local} ", timeout=5)
    time.sleep(0.3)
    codes = sorted(l.split("status=")[1].split()[0] for l in server.find_log(rf"event=grpc_stream_rejected peer={c.local} "))
    assert codes == ["12", "8"], codes
    bystander.check_push()


# --------------------------------------------------------------------------------------------
# 5. floods

def test_rapid_reset_flood_gets_goaway_and_close(server, bystander, raw):
    """HEADERS + RST_STREAM, thousands of times (CVE-2023-44487): nghttp2's reset budget (1000
    at once, 100/s) runs out, GOAWAY, and the connection is closed."""
    base = rss_mb(server)
    c = raw()
    handshake(c)
    block = header_block(grpc_request_fields())
    sid, sent = 1, 0
    for _ in range(50):               # at most 50 x 200 = 10000 streams
        batch = b"".join(headers_frame(sid + 2 * i, block) + rst_frame(sid + 2 * i) for i in range(200))
        if not c.send(batch):
            break
        sid += 400
        sent += 200
        c.read_for(0.01)
        if c.goaways() or c.closed:
            break
    g = goaway_of(c)
    assert g.goaway()[1] in (INTERNAL_ERROR, ENHANCE_YOUR_CALM), c.summary()
    assert g.goaway()[0] <= 2 * 1200, f"GOAWAY only after {g.goaway()[0] // 2} streams"
    assert "GOAWAY" in one_error_line(server, c.local)
    check_rss(server, base, "test_rapid_reset_flood_gets_goaway_and_close")
    assert_healthy(server)
    bystander.check_push()


def test_header_list_over_the_limit_resets_the_stream(server, bystander, raw):
    """Many header fields (18 KB, over the 16 KiB list limit) across HEADERS + CONTINUATION: the
    stream is reset, the connection stays; a client that keeps doing it runs out of its
    stream-error budget (200) and gets GOAWAY ENHANCE_YOUR_CALM."""
    base = rss_mb(server)
    c = raw()
    handshake(c)
    fields = grpc_request_fields(extra=[(f"x-field-{i:04d}", "v" * 40) for i in range(400)])
    block = header_block(fields)
    assert 16384 < len(block) < 2 * 16384

    def send_block(sid):
        return c.send(headers_frame(sid, block[:16000], end_stream=True, end_headers=False)
                      + frame(CONTINUATION, h2raw.END_HEADERS, sid, block[16000:]))

    send_block(1)
    f = c.wait_for(lambda f: f.type == RST_STREAM and f.stream_id == 1, timeout=5)
    assert f is not None and f.error_code() == INTERNAL_ERROR, c.summary()
    assert not c.closed and not c.goaways()
    sid = 3
    for _ in range(300):              # more than the 200-error budget
        if not send_block(sid):
            break
        sid += 2
        c.read_for(0)
        if c.closed:
            break
    g = goaway_of(c)
    assert g.goaway()[1] == ENHANCE_YOUR_CALM, c.summary()
    # The budget is 200 (a few refill meanwhile); resets still queued when the session ends are
    # dropped with it.
    assert 100 <= len(c.of_type(RST_STREAM)) <= 220, c.summary()
    assert "too many stream errors" in one_error_line(server, c.local)
    check_rss(server, base, "test_header_list_over_the_limit_resets_the_stream")
    bystander.check_push()


def test_continuation_flood_is_cut_off(server, bystander, raw):
    """One huge header block: HEADERS without END_HEADERS, then 16 KiB CONTINUATION frames
    (CVE-2024-28182). Debian's nghttp2 1.52.0-1+deb12u2 carries the fix: after 8 CONTINUATIONs
    the session ends; fastpilot answers GOAWAY ENHANCE_YOUR_CALM and closes."""
    base = rss_mb(server)
    c = raw()
    handshake(c)
    filler = header_block([("x-filler", "f" * 16000)])
    c.send(headers_frame(1, grpc_request_fields(), end_headers=False))
    sent = 0
    for _ in range(2000):             # 32 MB if nothing stopped it
        if not c.send(frame(CONTINUATION, 0, 1, filler)):
            break
        sent += 1
    g = goaway_of(c)
    assert g.goaway()[1] == ENHANCE_YOUR_CALM, c.summary()
    assert "CONTINUATION" in one_error_line(server, c.local)
    check_rss(server, base, "test_continuation_flood_is_cut_off")
    bystander.check_push()


def test_hpack_bomb_is_bounded(server, bystander, raw):
    """A 4 KiB header put in the HPACK dynamic table, then referenced by one byte 16000 times
    (64 MB decoded from 16 KB): the header list limit resets the stream; memory stays bounded."""
    base = rss_mb(server)
    c = raw()
    handshake(c)
    fields = grpc_request_fields()
    # Literal with incremental indexing (0x40): the big header goes into the dynamic table (index 62).
    block = header_block(fields) + b"\x40" + hpack_int(5, 7) + b"x-big" + hpack_int(4000, 7) + b"b" * 4000
    block += b"\xbe" * (16384 - len(block) - 16)   # 0x80 | 62: indexed, the entry just added
    c.send(headers_frame(1, block, end_stream=True))
    f = c.wait_for(lambda f: f.type == RST_STREAM and f.stream_id == 1, timeout=5)
    assert f is not None and f.error_code() == INTERNAL_ERROR, c.summary()
    # Again on more streams, each 16 KB of input: still only resets.
    block2 = b"\xbe" * 16000
    for i in range(20):
        c.send(headers_frame(3 + 2 * i, header_block(fields) + block2, end_stream=True))
    c.read_for(1.0)
    assert len(c.of_type(RST_STREAM)) == 21, c.summary()
    assert not c.closed
    check_rss(server, base, "test_hpack_bomb_is_bounded")
    bystander.check_push()


def open_streams(c, first_sid, count, block):
    sid = first_sid
    for _ in range(count // 100):
        c.send(b"".join(headers_frame(sid + 2 * i, block) for i in range(100)))
        sid += 200
    return sid


def test_streams_beyond_max_concurrent_after_settings_ack_are_a_connection_error(server, bystander, raw):
    """A client that acknowledged MAX_CONCURRENT_STREAMS=4096 and opens more: nghttp2 treats it
    as a connection error (RFC 9113 5.1.2 allows a stream error; 5.4.1 lets any stream error be
    a connection error): GOAWAY PROTOCOL_ERROR, closed, and the 4096 streams' memory is freed."""
    base = rss_mb(server)
    c = raw()
    handshake(c)
    c.read_for(0.2)  # our ACK of its SETTINGS has gone out
    block = header_block(grpc_request_fields())
    open_streams(c, 1, 4200, block)
    g = goaway_of(c)
    last, code, debug = g.goaway()
    assert code == PROTOCOL_ERROR and b"max concurrent streams" in debug, c.summary()
    assert last == 2 * 4096 - 1, last
    assert c.of_type(HEADERS)   # streams were answered (responses still queued die with the session)
    check_rss(server, base, "test_streams_beyond_max_concurrent_after_settings_ack_are_a_connection_error")
    assert_healthy(server)
    bystander.check_push()


def test_streams_beyond_max_concurrent_are_refused_then_the_persistent_client_is_cut_off(server, bystander, raw):
    """Before its SETTINGS ACK a client's extra streams get RST_STREAM REFUSED_STREAM (safe to
    retry); one that keeps opening them uses up its stream-error budget (200 at once) and gets
    GOAWAY ENHANCE_YOUR_CALM. Without that budget it was refused forever, and a client that
    never read the refusals grew the server without bound."""
    base = rss_mb(server)
    c = raw(ack_server_settings=False)
    handshake(c)
    block = header_block(grpc_request_fields())
    sid = open_streams(c, 1, 4100, block)   # 4 over the limit
    c.read_for(1.0)
    refused = [f.stream_id for f in c.of_type(RST_STREAM) if f.error_code() == REFUSED_STREAM]
    assert refused == list(range(2 * 4096 + 1, sid, 2)), refused
    assert not c.closed and not c.goaways()
    # It persists.
    for _ in range(10):
        sid = open_streams(c, sid, 100, block)
        c.read_for(0)
        if c.closed:
            break
    g = goaway_of(c)
    assert g.goaway()[1] == ENHANCE_YOUR_CALM, c.summary()
    assert 100 <= len(c.of_type(RST_STREAM)) <= 220, c.summary()
    assert "too many stream errors" in server.wait_log(rf"event=h2_connection_error peer={c.local} ")[0]
    check_rss(server, base, "test_streams_beyond_max_concurrent_are_refused_then_the_persistent_client_is_cut_off")
    assert_healthy(server)
    bystander.check_push()


def test_reset_flood_the_client_never_reads_is_bounded(server, bystander, raw):
    """Malformed requests (an upper-case header name) the server answers with RST_STREAM, sent by
    a client that never reads and whose receive buffer is 4 KiB: the stream-error budget cuts it
    off; the server's memory does not follow the flood."""
    base = rss_mb(server)
    c = raw(rcvbuf=4096, ack_server_settings=False)
    time.sleep(0.2)
    fields = grpc_request_fields(extra=[("X-Bad", "1")])
    # Incremental indexing for the first block, then every request is 7 one-byte indexes.
    first = b"".join(b"\x40" + hpack_int(len(n), 7) + n.encode() + hpack_int(len(v), 7) + v.encode() for n, v in fields)
    idx = bytes(0x80 | (62 + i) for i in reversed(range(len(fields))))
    c.send(headers_frame(1, first, end_stream=True))
    sid, sent = 3, 0
    for _ in range(1000):             # at most 1M requests, 16 MB
        if not c.send(b"".join(headers_frame(sid + 2 * i, idx, end_stream=True) for i in range(1000))):
            break
        sid += 2000
        sent += 1000
    peak = rss_mb(server)
    assert c.wait_closed(CLOSE_TIMEOUT), c.summary()
    g = c.goaways()
    assert g and g[-1].goaway()[1] == ENHANCE_YOUR_CALM, c.summary()
    check_rss(server, base, f"{sent} malformed requests, never read", peak)
    assert_healthy(server)
    bystander.check_push()


@pytest.mark.parametrize("kind", ["ping", "settings"])
def test_control_frame_flood_the_client_never_reads_is_cut_off(kind, server, bystander, raw):
    """PING or SETTINGS frames, each of which wants an ACK, from a client that never reads:
    nghttp2's outbound-ACK limit (1000) ends the session: GOAWAY ENHANCE_YOUR_CALM, closed."""
    base = rss_mb(server)
    c = raw(rcvbuf=4096, ack_server_settings=False)
    time.sleep(0.2)
    one = ping_frame() if kind == "ping" else settings_frame([(h2raw.INITIAL_WINDOW_SIZE, 65535)])
    for _ in range(100):              # at most 1M frames
        if not c.send(one * 10000):
            break
    g = goaway_of(c)
    assert g.goaway()[1] == ENHANCE_YOUR_CALM, c.summary()
    assert "Flooding" in one_error_line(server, c.local)
    check_rss(server, base, f"test_control_frame_flood_the_client_never_reads_is_cut_off[{kind}]")
    bystander.check_push()


def test_partial_messages_on_many_streams_are_bounded(server, bystander, raw):
    """64 streams each announce a message of 4 MiB - 1 and send all but the last byte: the
    connection holds at most 16 MiB of partial messages; the streams past it end with
    RESOURCE_EXHAUSTED. Before, this grew the server by 250 MB (4096 streams: 16 GiB)."""
    base = rss_mb(server)
    c = raw(timeout=10.0)
    handshake(c)
    streams = [1 + 2 * i for i in range(64)]
    c.send(b"".join(headers_frame(s, grpc_request_fields()) for s in streams))
    c.send(b"".join(data_frame(s, b"\x00" + struct.pack(">I", 4 * 1024 * 1024 - 1)) for s in streams))
    chunk = b"\x0a" * 16384
    for _ in range(255):              # 255 x 16 KiB = 4 MiB - 16 KiB per stream
        if not c.send(b"".join(data_frame(s, chunk) for s in streams)):
            break
        c.read_for(0)
    c.read_for(1.0)
    peak = rss_mb(server)
    assert not c.closed, c.summary()
    ended = {f.stream_id for f in c.of_type(HEADERS) if f.flags & h2raw.END_STREAM}
    assert len(ended) >= 64 - 5, f"only {len(ended)} streams were rejected"
    check_rss(server, base, "64 streams of partial 4 MiB messages", peak)
    lines = server.wait_log(rf"event=grpc_stream_rejected peer={c.local} .*status=8", timeout=5)
    assert lines and "partial messages on this connection" in lines[0]
    bystander.check_push()
