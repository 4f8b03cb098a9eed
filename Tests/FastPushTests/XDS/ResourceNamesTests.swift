import Testing
@testable import FastPush

/// Istio's cluster names, parsed as the generators and the carry-over of a full push read them.
@Suite struct ResourceNamesTests {
    @Test(arguments: [
        ("outbound|8080||echo.demo.svc.cluster.local", 8080, "echo.demo.svc.cluster.local"),
        ("outbound|80|v1|ledger.payments", 80, "ledger.payments"),
        ("outbound|4294967295||h", 4_294_967_295, "h"),
        // Everything after the third bar is the host, bars included (split with maxSplits 3).
        ("outbound|1||a|b", 1, "a|b"),
        ("outbound|0007|sub|x", 7, "x"),
    ] as [(String, UInt32, String)])
    func parses(_ name: String, _ port: UInt32, _ host: String) throws {
        let r = try #require(ResourceNames.parseCluster(name))
        #expect(r.port == port && r.host == host)
        #expect(ResourceNames.parseCluster(ResourceNames.outboundCluster(port: port, host: host))?.host == host)
    }

    @Test(arguments: [
        "", "outbound", "outbound|", "outbound|80", "outbound|80|", "outbound|80||", "inbound|80||h",
        "outbound||x|h", "outbound|8a||h", "outbound|-1||h", "outbound|4294967296||h", "outbound|99999999999||h",
        "Outbound|80||h", "outbound|８０||h",
    ])
    func refuses(_ name: String) {
        #expect(ResourceNames.parseCluster(name) == nil, "\(name)")
    }
}
