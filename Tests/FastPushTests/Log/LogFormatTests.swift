import Testing
@testable import FastPush

/// The text formats shared by log lines and the admin API's JSON.
@Suite struct LogFormatTests {
    @Test func iso8601() {
        #expect(WallClock.iso8601(seconds: 0) == "1970-01-01T00:00:00Z")
        #expect(WallClock.iso8601(seconds: 1_795_000_000) == "2026-11-18T11:06:40Z")
        #expect(WallClock.iso8601(seconds: 1_795_000_000, millis: 7) == "2026-11-18T11:06:40.007Z")
    }

    @Test func logValuesAreQuotedOnlyWhenNeeded() {
        #expect(Log.quote("plain") == "plain")
        #expect(Log.quote("") == "\"\"")
        #expect(Log.quote("a=b") == "\"a=b\"")
        // Control characters are escaped as JSON does, so one value never spans lines.
        #expect(Log.quote("two words\n\u{1B}\"") == "\"two words\\n\\u001b\\\"\"")
        #expect(JSONText.quote("tab\there\r") == "\"tab\\there\\r\"")
    }
}
