/// Why a channel closed. Logged once, by whoever closes it.
public enum CloseReason: Sendable, CustomStringConvertible {
    case eof
    case error(Int32)
    case local(String)
    case sendTimeout

    public var description: String {
        switch self {
        case .eof: "eof"
        case let .error(e): "errno_\(e)"
        case let .local(s): s
        case .sendTimeout: "send_timeout"
        }
    }
}

/// The protocol stack on top of one socket. All calls happen on the channel's loop thread.
public protocol ChannelHandler: AnyObject {
    func channelActive(_ channel: Channel)
    func channelRead(_ channel: Channel, _ bytes: UnsafeRawBufferPointer)
    /// The socket can take more: append up to about `budget` bytes to `out`.
    func produce(_ channel: Channel, into out: inout OutboundBuffer, budget: Int)
    func channelInactive(_ channel: Channel, reason: CloseReason)
}
