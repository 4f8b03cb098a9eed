/// Server HTTP/2 settings for long-lived push streams: many concurrent streams per connection
/// (proxyless gRPC and multiplexed load clients), and windows large enough that clients never
/// stall on sending requests.
public struct H2Settings: Sendable {
    public var maxConcurrentStreams: UInt32 = 4096
    /// Our receive window per stream (what a client may send before we update it).
    public var initialWindowSize: UInt32 = 1 << 20
    /// Our receive window for the whole connection.
    public var connectionWindowSize: UInt32 = 16 << 20
    public var maxFrameSize: UInt32 = 16384
    /// Request header list limit; larger header blocks reset the stream.
    public var maxHeaderListSize: UInt32 = 16384
    /// Rapid-reset defence (CVE-2023-44487): RST_STREAM tokens, refilled per second.
    public var streamResetBurst: UInt64 = 1000
    public var streamResetRate: UInt64 = 100
    /// Outbound control frames (SETTINGS ACK, PING ACK) allowed to queue before the peer is cut off.
    public var maxOutboundAck: Int = 1000
    public var maxSettingsEntries: Int = 32
    /// Stream errors a peer may cause (streams refused beyond MAX_CONCURRENT_STREAMS before it
    /// acknowledged our SETTINGS, malformed requests, header lists over the limit): tokens,
    /// refilled per second. Each error costs the server a queued RST_STREAM; a peer that runs out
    /// of tokens gets GOAWAY ENHANCE_YOUR_CALM. A well-behaved client causes none.
    public var streamErrorBurst: Int = 200
    public var streamErrorRate: Int = 20
    /// nghttp2's own memory for one session: its streams, HPACK tables and queued frames. A
    /// legitimate session needs well under 4 MiB (4096 open streams with a response each queued
    /// is about 2.5 MiB); a peer that drives it past this (frames whose answers it never reads)
    /// gets GOAWAY ENHANCE_YOUR_CALM.
    public var maxSessionMemory: Int = 16 << 20
    /// A connection whose client has not sent its preface and SETTINGS by then is closed (a
    /// client sends them with its first bytes; this frees connections that never will).
    public var handshakeTimeoutNanos: UInt64 = 10_000_000_000
    /// After a connection error the GOAWAY is flushed before the close; a peer that does not
    /// read it is disconnected after this long anyway.
    public var closeTimeoutNanos: UInt64 = 5_000_000_000

    public init() {}
}
