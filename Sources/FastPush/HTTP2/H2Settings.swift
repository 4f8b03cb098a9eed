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

    public init() {}
}
