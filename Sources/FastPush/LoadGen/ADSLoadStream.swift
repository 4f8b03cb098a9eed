/// One simulated ADS client as the load generator drives it, whichever protocol it speaks
/// (`ADSClientStream`: State of the World; `DeltaClientStream`: Delta). Loop-thread only.
public protocol ADSLoadStream: AnyObject {
    var index: Int { get }
    var isSynced: Bool { get }
    var bytesReceived: Int { get }
    var messagesReceived: Int { get }
    var error: String? { get }
    /// After each response: (type, version, time).
    var onResponse: ((XdsType, String, UInt64) -> Void)? { get set }
    var onSynced: (() -> Void)? { get set }
    /// The version of the last response of `t` (system_version_info in Delta).
    func version(_ t: XdsType) -> String
    func requested(_ t: XdsType) -> Bool
    /// The clusters whose load assignments the stream watches.
    var edsNames: [String] { get }
    func start()
    func receive(_ message: UnsafeRawBufferPointer, now: UInt64)
}
