/// Carries a loop-confined value through a `@Sendable` closure to its loop thread
/// (the same idea as swift-nio's NIOLoopBound).
///
/// `@unchecked Sendable`: the value is only reachable through `value`, which traps off its loop.
public struct LoopBound<Value>: @unchecked Sendable {
    private let _value: Value
    public let loop: any IOLoop

    public init(_ value: Value, loop: any IOLoop) {
        precondition(loop.inEventLoop, "LoopBound created off its loop")
        self._value = value
        self.loop = loop
    }

    public var value: Value {
        precondition(loop.inEventLoop, "LoopBound used off its loop")
        return _value
    }
}
