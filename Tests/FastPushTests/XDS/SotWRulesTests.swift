import Testing
@testable import FastPush

/// istio-push-semantics.md section 18, cases 26–34 (Istio's pkg/xds/server_test.go).
@Suite struct SotWRulesTests {
    func request(_ t: XdsType, names: [String] = [], nonce: String = "", error: RPCStatus? = nil) -> DiscoveryRequest {
        var r = DiscoveryRequest()
        r.typeURL = t.typeURL
        r.resourceNames = names
        r.responseNonce = nonce
        r.errorDetail = error
        return r
    }

    func watched(_ t: XdsType, names: [String] = [], nonce: String = "nonce", alwaysRespond: Bool = false) -> Watches {
        var w = WatchedResource(type: t, names: names)
        w.nonceSent = nonce
        w.alwaysRespond = alwaysRespond
        return [t: w]
    }

    @Test("case 26: no watch, CDS request without nonce → respond")
    func initialRequest() {
        var w: Watches = [:]
        #expect(SotWRules.process(request(.cds), type: .cds, watched: &w) == .initial)
        #expect(w[.cds]?.wildcard == true)
    }

    @Test("case 27: nonce matches → ACK, no response, NonceAcked set")
    func ack() {
        var w = watched(.cds)
        #expect(SotWRules.process(request(.cds, nonce: "nonce"), type: .cds, watched: &w) == .ack(respond: false))
        #expect(w[.cds]?.nonceAcked == "nonce")
    }

    @Test("case 28: ACK while AlwaysRespond → respond, flag cleared")
    func alwaysRespond() {
        var w = watched(.eds, names: ["r"], alwaysRespond: true)
        #expect(SotWRules.process(request(.eds, names: ["r"], nonce: "nonce"), type: .eds, watched: &w) == .ack(respond: true))
        #expect(w[.eds]?.alwaysRespond == false)
    }

    @Test("case 29: stale nonce → ignored")
    func staleNonce() {
        var w = watched(.cds)
        #expect(SotWRules.process(request(.cds, nonce: "stale nonce"), type: .cds, watched: &w) == .stale)
        #expect(w[.cds]?.nonceAcked == "")
    }

    @Test("case 30: no watch, request with a nonce (reconnect to a new server) → respond")
    func reconnect() {
        var w: Watches = [:]
        #expect(SotWRules.process(request(.cds, nonce: "reconnect nonce"), type: .cds, watched: &w) == .initial)
    }

    @Test("case 31: EDS ACK with a new name → respond")
    func subscriptionGrows() {
        var w = watched(.eds, names: ["c1"])
        #expect(SotWRules.process(request(.eds, names: ["c1", "c2"], nonce: "nonce"), type: .eds, watched: &w) == .ack(respond: true))
        #expect(w[.eds]?.names.names == ["c1", "c2"])
    }

    @Test("case 32: EDS ACK with the same names in another order → no response")
    func orderIrrelevant() {
        var w = watched(.eds, names: ["c2", "c1"])
        #expect(SotWRules.process(request(.eds, names: ["c1", "c2"], nonce: "nonce"), type: .eds, watched: &w) == .ack(respond: false))
    }

    @Test("case 33: EDS request with no names → unsubscribe, watch deleted")
    func unsubscribe() {
        var w = watched(.eds, names: ["c1"])
        #expect(SotWRules.process(request(.eds, nonce: "nonce"), type: .eds, watched: &w) == .unsubscribe)
        #expect(w[.eds] == nil)
    }

    @Test("case 34: NACK → no response, LastError set; a later ACK clears it")
    func nack() {
        var w = watched(.eds, names: ["c1"])
        let e = RPCStatus(code: 3, message: "duplicate endpoint")
        guard case let .nack(msg) = SotWRules.process(request(.eds, names: ["c1"], nonce: "nonce", error: e), type: .eds, watched: &w) else {
            Issue.record("not a NACK"); return
        }
        #expect(msg.contains("duplicate endpoint"))
        #expect(w[.eds]?.lastError?.contains("duplicate endpoint") == true)
        #expect(w[.eds]?.nonceAcked == "")
        #expect(SotWRules.process(request(.eds, names: ["c1"], nonce: "nonce"), type: .eds, watched: &w) == .ack(respond: false))
        #expect(w[.eds]?.lastError == nil)
    }

    @Test func eDSRemovalOnlyNeedsNoResponse() {
        var w = watched(.eds, names: ["c1", "c2"])
        #expect(SotWRules.process(request(.eds, names: ["c1"], nonce: "nonce"), type: .eds, watched: &w) == .ack(respond: false))
        #expect(w[.eds]?.names.names == ["c1"])
    }

    @Test func wildcardTypesAnswerAnySubscriptionChange() {
        var w = watched(.lds, names: ["a", "b"])
        #expect(SotWRules.process(request(.lds, names: ["a"], nonce: "nonce"), type: .lds, watched: &w) == .ack(respond: true))
    }

    @Test func newCDSWatchMarksEDSForWarming() {
        var w = watched(.eds, names: ["c1"])
        #expect(SotWRules.process(request(.cds), type: .cds, watched: &w) == .initial)
        #expect(w[.eds]?.alwaysRespond == true)
    }

    @Test func starMeansWildcard() {
        var w: Watches = [:]
        _ = SotWRules.process(request(.lds, names: ["*"]), type: .lds, watched: &w)
        #expect(w[.lds]?.wildcard == true)
        #expect(w[.lds]?.names.isEmpty == true)
    }
}
