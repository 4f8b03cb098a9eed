import Testing
@testable import FastPush

/// /debug/pushz reads times written by other threads: a write that completes after the reader
/// took "now" made `now - completed` wrap, and formatting it trapped (a crash of the admin loop
/// seen under `fastpilot-bench scale-trace`). Differences saturate at 0 and formatting is total.
@Suite struct TraceArithmeticTests {
    @Test func differencesSaturateAtZero() {
        #expect(MonotonicClock.between(100, 250) == 150)
        #expect(MonotonicClock.between(250, 100) == 0)
        #expect(MonotonicClock.between(0, UInt64.max) == UInt64.max)
    }

    @Test func millisecondsRoundToOneDecimalAndNeverTrap() {
        #expect(PushTraces.ms(0) == "0.0")
        #expect(PushTraces.ms(149_999) == "0.1")
        #expect(PushTraces.ms(150_000) == "0.2")
        #expect(PushTraces.ms(12_345_678_900) == "12345.7")
        #expect(!PushTraces.ms(UInt64.max).isEmpty)
        #expect(!PushTraces.ms(UInt64.max - 10).isEmpty)
    }
}
