"""A raw HTTP/2 (h2c, prior knowledge) client for hostile tests: frames are built by hand with
`struct`, so a test can send exactly the bytes it wants, including invalid ones.

Header blocks are HPACK-encoded as literals without indexing and without Huffman coding
(RFC 7541 6.2.2), which every decoder must accept; this client never decodes the server's
header blocks (it only needs frame types, stream ids, RST_STREAM and GOAWAY codes).

Every read has a deadline; every socket has a timeout. Traffic goes to 127.0.0.1 only.
"""
import socket
import struct
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
FRAME_NAMES = ["DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE", "PING", "GOAWAY",
               "WINDOW_UPDATE", "CONTINUATION"]

END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8

# Error codes (RFC 9113 section 7).
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, STREAM_CLOSED, \
    FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR, CONNECT_ERROR, ENHANCE_YOUR_CALM, \
    INADEQUATE_SECURITY, HTTP_1_1_REQUIRED = range(14)
ERROR_NAMES = ["NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
               "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR",
               "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"]

# SETTINGS identifiers.
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE, \
    MAX_HEADER_LIST_SIZE = range(1, 7)

ADS_PATH = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"


def error_name(code):
    return ERROR_NAMES[code] if 0 <= code < len(ERROR_NAMES) else f"0x{code:x}"


def frame(ftype, flags, stream_id, payload=b""):
    """One frame: 24-bit length, type, flags, 31-bit stream id, payload."""
    n = len(payload)
    return struct.pack(">BHBBI", n >> 16, n & 0xFFFF, ftype, flags, stream_id & 0x7FFFFFFF) + payload


def hpack_int(value, prefix_bits, first=0):
    """RFC 7541 5.1: an integer with an N-bit prefix; `first` carries the bits above the prefix."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_literal(name, value):
    """Literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2)."""
    n = name.encode() if isinstance(name, str) else name
    v = value.encode() if isinstance(value, str) else value
    return b"\x00" + hpack_int(len(n), 7) + n + hpack_int(len(v), 7) + v


def header_block(fields):
    return b"".join(hpack_literal(n, v) for n, v in fields)


def grpc_request_fields(path=ADS_PATH, authority="fastpilot.hostile", extra=()):
    return [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", authority),
            ("content-type", "application/grpc"), ("te", "trailers")] + list(extra)


def grpc_message(body):
    """A gRPC length-prefixed message (uncompressed)."""
    return b"\x00" + struct.pack(">I", len(body)) + body


def settings_frame(entries=(), ack=False):
    return frame(SETTINGS, ACK if ack else 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in entries))


def headers_frame(stream_id, fields_or_block, end_stream=False, end_headers=True):
    block = fields_or_block if isinstance(fields_or_block, (bytes, bytearray)) else header_block(fields_or_block)
    flags = (END_STREAM if end_stream else 0) | (END_HEADERS if end_headers else 0)
    return frame(HEADERS, flags, stream_id, bytes(block))


def data_frame(stream_id, payload, end_stream=False):
    return frame(DATA, END_STREAM if end_stream else 0, stream_id, payload)


def rst_frame(stream_id, code=CANCEL):
    return frame(RST_STREAM, 0, stream_id, struct.pack(">I", code))


def ping_frame(opaque=b"hostile!", ack=False):
    return frame(PING, ACK if ack else 0, 0, opaque[:8].ljust(8, b"\0"))


def window_update_frame(stream_id, increment):
    return frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">I", increment & 0x7FFFFFFF))


class Frame:
    __slots__ = ("type", "flags", "stream_id", "payload")

    def __init__(self, ftype, flags, stream_id, payload):
        self.type, self.flags, self.stream_id, self.payload = ftype, flags, stream_id, payload

    @property
    def name(self):
        return FRAME_NAMES[self.type] if self.type < len(FRAME_NAMES) else f"type{self.type}"

    def error_code(self):
        """RST_STREAM's or GOAWAY's error code."""
        if self.type == RST_STREAM:
            return struct.unpack(">I", self.payload[:4])[0]
        if self.type == GOAWAY:
            return struct.unpack(">I", self.payload[4:8])[0]
        raise ValueError(f"{self.name} has no error code")

    def goaway(self):
        """(last_stream_id, error_code, debug data) of a GOAWAY frame."""
        assert self.type == GOAWAY, self
        last, code = struct.unpack(">II", self.payload[:8])
        return last & 0x7FFFFFFF, code, self.payload[8:]

    def settings(self):
        return [struct.unpack(">HI", self.payload[i:i + 6]) for i in range(0, len(self.payload) - 5, 6)]

    def __repr__(self):
        extra = ""
        if self.type in (RST_STREAM, GOAWAY) and len(self.payload) >= (8 if self.type == GOAWAY else 4):
            extra = f" {error_name(self.error_code())}"
            if self.type == GOAWAY:
                extra += f" last={self.goaway()[0]} debug={self.goaway()[2][:80]!r}"
        return f"<{self.name} flags=0x{self.flags:x} stream={self.stream_id} len={len(self.payload)}{extra}>"


class H2Raw:
    """One TCP connection to the xDS port. `frames` keeps every frame received; `closed`
    becomes True once the server closed the connection (EOF or reset)."""

    def __init__(self, address, preface=True, settings=((ENABLE_PUSH, 0),), ack_server_settings=True,
                 rcvbuf=None, timeout=5.0):
        host, port = address.rsplit(":", 1)
        assert host in ("127.0.0.1", "localhost"), "hostile traffic goes to loopback only"
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            # Before connect, so that the window the kernel advertises stays small.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.timeout = timeout
        self.sock.settimeout(timeout)
        self.sock.connect((host, int(port)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.local = "%s:%d" % self.sock.getsockname()
        self.buf = b""
        self.frames = []
        self.bytes_received = 0
        self.closed = False
        self.close_error = None
        self.ack_server_settings = ack_server_settings
        self.send_error = None
        if preface:
            self.send(PREFACE + settings_frame(settings))

    # -- sending --

    def send(self, data):
        """Sends everything; returns False (and keeps the error) if the server closed first."""
        if self.send_error is not None:
            return False
        try:
            self.sock.settimeout(self.timeout)   # reads shorten it
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, socket.timeout, OSError) as e:
            self.send_error = e
            return False

    def send_frames(self, frames):
        return self.send(b"".join(frames))

    # -- receiving --

    def _parse(self):
        while len(self.buf) >= 9:
            n = (self.buf[0] << 16) | (self.buf[1] << 8) | self.buf[2]
            if len(self.buf) < 9 + n:
                return
            ftype, flags, sid = self.buf[3], self.buf[4], struct.unpack(">I", self.buf[5:9])[0] & 0x7FFFFFFF
            f = Frame(ftype, flags, sid, self.buf[9:9 + n])
            self.buf = self.buf[9 + n:]
            self.frames.append(f)
            if self.ack_server_settings and ftype == SETTINGS and not flags & ACK:
                self.send(settings_frame(ack=True))

    def _recv_once(self, timeout):
        """One recv with a timeout. Returns False once the connection is closed."""
        if self.closed:
            return False
        self.sock.settimeout(max(timeout, 0.001))
        try:
            chunk = self.sock.recv(1 << 16)
        except socket.timeout:
            return True
        except (ConnectionResetError, ConnectionAbortedError, OSError) as e:
            self.closed, self.close_error = True, e
            return False
        if not chunk:
            self.closed = True
            return False
        self.bytes_received += len(chunk)
        self.buf += chunk
        self._parse()
        return True

    def read_for(self, seconds):
        """Reads whatever arrives during `seconds` (or until the connection closes)."""
        deadline = time.monotonic() + seconds
        while not self.closed:
            left = deadline - time.monotonic()
            self._recv_once(max(left, 0.001))   # at least one read, even for read_for(0)
            if left <= 0:
                break
        return self.frames

    def wait_for(self, pred, timeout=5.0):
        """The first received frame (old or new) for which pred(frame) holds, reading for at
        most `timeout`; None if none came (or the connection closed without one)."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for f in self.frames[seen:]:
                if pred(f):
                    return f
            seen = len(self.frames)
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return None
            self._recv_once(left)

    def wait_closed(self, timeout=5.0):
        """Reads (and parses) until the server closes; True if it did within `timeout`."""
        deadline = time.monotonic() + timeout
        while not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._recv_once(left)
        return True

    def goaways(self):
        return [f for f in self.frames if f.type == GOAWAY]

    def of_type(self, ftype, stream_id=None):
        return [f for f in self.frames if f.type == ftype and (stream_id is None or f.stream_id == stream_id)]

    def summary(self, last=30):
        kinds = {}
        for f in self.frames:
            kinds[f.name] = kinds.get(f.name, 0) + 1
        tail = "\n".join(repr(f) for f in self.frames[-last:])
        return (f"{len(self.frames)} frames {kinds}, closed={self.closed} ({self.close_error!r}), "
                f"send_error={self.send_error!r}\n{tail}")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
