#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
@testable import FastPush

/// The admin write path in front of any store: validation, resourceVersion / If-Match, and
/// answers that come later from another thread. A recording writer stands in for the store.
@Suite struct StoreServiceEntryAPITests {
    /// Records what reaches the store; answers at once, or later when the test says so.
    final class TestWriter: RegistryWriter, Sendable {
        enum Call: Equatable, Sendable {
            case put(namespace: String, name: String, expectedVersion: String?)
            case delete(namespace: String, name: String, expectedVersion: String?)
        }

        /// nil: hold the answer until `answer` is called.
        let immediate: WriteOutcome?
        private let state = Mutex<(calls: [Call], entries: [EntryWrite], pending: [@Sendable (WriteOutcome) -> Void])>(([], [], []))
        let called = Semaphore()

        init(immediate: WriteOutcome? = .applied(body: "{\"ok\":true}\n")) { self.immediate = immediate }

        var calls: [Call] { state.withLock { $0.calls } }
        var entries: [EntryWrite] { state.withLock { $0.entries } }

        func put(_ entry: EntryWrite, done: @escaping @Sendable (WriteOutcome) -> Void) {
            state.withLock {
                $0.calls.append(.put(namespace: entry.namespace, name: entry.name, expectedVersion: entry.expectedVersion))
                $0.entries.append(entry)
            }
            finish(done)
        }

        func delete(namespace: String, name: String, expectedVersion: String?, done: @escaping @Sendable (WriteOutcome) -> Void) {
            state.withLock { $0.calls.append(.delete(namespace: namespace, name: name, expectedVersion: expectedVersion)) }
            finish(done)
        }

        private func finish(_ done: @escaping @Sendable (WriteOutcome) -> Void) {
            if let immediate {
                done(immediate)
            } else {
                state.withLock { $0.pending.append(done) }
            }
            called.signal()
        }

        /// Answers the held writes from a thread of its own; returns once it has.
        func answer(_ outcome: WriteOutcome) {
            let pending = state.withLock { s in defer { s.pending = [] }; return s.pending }
            OSThread.spawn(name: "test-writer") { for done in pending { done(outcome) } }.join()
        }

        func get(namespace: String, name: String) -> String? { name == "known" ? "{\"known\":true}\n" : nil }
        func list() -> String { "{\"items\":[]}\n" }
    }

    static func body(_ name: String = "shop", ns: String? = "demo", version: String? = nil, spec: String? = nil) -> [UInt8] {
        let nsField = ns.map { ",\"namespace\":\"\($0)\"" } ?? ""
        let rv = version.map { ",\"resourceVersion\":\($0)" } ?? ""
        let s = spec ?? #"{"hosts":["\#(name).\#(ns ?? "default").svc.cluster.local"],"ports":[{"number":8080,"name":"grpc","protocol":"GRPC"}],"resolution":"STATIC","endpoints":[{"address":"10.1.0.1"}]}"#
        return Array(#"{"apiVersion":"networking.istio.io/v1","kind":"ServiceEntry","metadata":{"name":"\#(name)"\#(nsField)\#(rv),"labels":{"a":"b"}},"spec":\#(s)}"#.utf8)
    }

    static func request(_ method: String, _ path: String = "/v1/serviceentries/demo/shop", body: [UInt8] = [],
                        ifMatch: String? = nil) -> HTTPRequest {
        HTTPRequest(method: method, path: path, headers: ifMatch.map { ["if-match": $0] } ?? [:], body: body)
    }

    static func call(_ h: AdminHandlers, _ r: HTTPRequest) -> (Int, String) {
        let resp = h.handle(r)
        return (resp.status, String(decoding: resp.body, as: UTF8.self))
    }

    @Test(arguments: [
        ("empty", ""),
        ("not JSON", "{not json"),
        ("a string", "\"shop\""),
        ("an array", "[\(String(decoding: body(), as: UTF8.self))]"),
        ("no hosts", String(decoding: body(spec: #"{"hosts":[],"ports":[{"number":8080,"name":"grpc"}],"resolution":"STATIC"}"#), as: UTF8.self)),
        ("port out of range", String(decoding: body(spec: #"{"hosts":["shop.demo"],"ports":[{"number":70000,"name":"grpc"}],"resolution":"STATIC"}"#), as: UTF8.self)),
        ("only an unsupported resolution", String(decoding: body(spec: #"{"hosts":["shop.demo"],"ports":[{"number":80,"name":"http"}],"resolution":"DNS"}"#), as: UTF8.self)),
        ("not a ServiceEntry", #"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"shop","namespace":"demo"}}"#),
        ("a List", #"{"apiVersion":"v1","kind":"List","items":[\#(String(decoding: body(), as: UTF8.self))]}"#),
    ])
    func invalidBodiesAre400AndReachNoStore(what: String, json: String) {
        let w = TestWriter()
        let h = AdminHandlers(server: Fixtures.server(), writer: w)
        let (status, body) = Self.call(h, Self.request("PUT", body: Array(json.utf8)))
        #expect(status == 400, "\(what): \(body)")
        #expect(body.hasPrefix("{\"error\":"), "\(what)")
        #expect(w.calls.isEmpty, "\(what) reached the store")
    }

    @Test func aBodyNamingAnotherEntryIs400() {
        let w = TestWriter()
        let h = AdminHandlers(server: Fixtures.server(), writer: w)
        var (status, body) = Self.call(h, Self.request("PUT", "/v1/serviceentries/demo/other", body: Self.body()))
        #expect(status == 400 && body.contains("metadata says demo/shop, the URL says demo/other"), "\(body)")
        (status, body) = Self.call(h, Self.request("PUT", "/v1/serviceentries/prod/shop", body: Self.body()))
        #expect(status == 400 && body.contains("the URL says prod/shop"), "\(body)")
        // No namespace in metadata means "default".
        (status, body) = Self.call(h, Self.request("PUT", body: Self.body(ns: nil)))
        #expect(status == 400 && body.contains("metadata says default/shop"), "\(body)")
        #expect(w.calls.isEmpty)
        (status, _) = Self.call(h, Self.request("PUT", "/v1/serviceentries/default/shop", body: Self.body(ns: nil)))
        #expect(status == 200)
        #expect(w.calls == [.put(namespace: "default", name: "shop", expectedVersion: nil)])
    }

    @Test func resourceVersionAndIfMatch() {
        let w = TestWriter()
        let h = AdminHandlers(server: Fixtures.server(), writer: w)
        func put(version: String?, ifMatch: String?) -> Int {
            Self.call(h, Self.request("PUT", body: Self.body(version: version), ifMatch: ifMatch)).0
        }
        // They disagree: 400, nothing written.
        #expect(put(version: "\"3\"", ifMatch: "\"4\"") == 400)
        #expect(put(version: "3", ifMatch: "4") == 400)
        #expect(put(version: "\"0\"", ifMatch: "7") == 400)
        #expect(w.calls.isEmpty)
        // Either one, or both the same.
        #expect(put(version: "\"3\"", ifMatch: nil) == 200)
        #expect(put(version: "3", ifMatch: nil) == 200)             // a number is read as its digits
        #expect(put(version: nil, ifMatch: "W/\"5\"") == 200)
        #expect(put(version: "\"6\"", ifMatch: "\"6\"") == 200)
        #expect(put(version: "\"0\"", ifMatch: nil) == 200)          // only if it does not exist
        #expect(put(version: nil, ifMatch: nil) == 200)
        #expect(put(version: nil, ifMatch: "*") == 200)              // any version: no condition
        #expect(w.calls.map {
            guard case let .put(_, _, v) = $0 else { return "delete" }
            return v ?? "none"
        } == ["3", "3", "5", "6", "0", "none", "none"])
        // The store gets the object without resourceVersion, the rest of metadata kept.
        for e in w.entries {
            #expect(e.object["metadata"]?["resourceVersion"] == nil)
            #expect(e.object["metadata"]?["labels"] == .object(["a": .string("b")]))
            #expect(e.object["metadata"]?["name"] == .string("shop"))
            #expect(e.services.map(\.hostname) == ["shop.demo.svc.cluster.local"])
        }
        // DELETE takes If-Match.
        #expect(Self.call(h, Self.request("DELETE", ifMatch: "\"9\"")).0 == 200)
        #expect(Self.call(h, Self.request("DELETE")).0 == 200)
        #expect(w.calls.suffix(2) == [.delete(namespace: "demo", name: "shop", expectedVersion: "9"),
                                      .delete(namespace: "demo", name: "shop", expectedVersion: nil)])
    }

    @Test(arguments: [
        ("5", "5"), ("\"5\"", "5"), ("W/\"5\"", "5"), ("  \"12\"  ", "12"), ("W/5", "5"),
        ("*", nil), ("\"*\"", nil), ("", nil), ("\"\"", nil), ("W/\"\"", nil), ("   ", nil),
    ] as [(String, String?)])
    func ifMatchParsing(header: String, version: String?) {
        #expect(ServiceEntryAPI.ifMatch(Self.request("PUT", ifMatch: header)) == version, "If-Match: \(header)")
    }

    @Test func noIfMatchHeaderIsNoVersion() {
        #expect(ServiceEntryAPI.ifMatch(Self.request("PUT")) == nil)
    }

    /// A store answers from another thread once the write is durable: the response comes then,
    /// once, with what the store said.
    @Test(.timeLimit(.minutes(1))) func anAnswerFromAnotherThreadLater() {
        let w = TestWriter(immediate: nil)
        let h = AdminHandlers(server: Fixtures.server(), writer: w)
        let responses = Mutex<[HTTPResponse]>([])
        let answered = Semaphore()
        h.handle(Self.request("PUT", body: Self.body(version: "\"4\""))) { r in
            responses.withLock { $0.append(r) }
            answered.signal()
        }
        // The store has the write, and has not answered: neither has the API.
        #expect(w.called.wait(timeoutNanos: 5_000_000_000))
        #expect(responses.withLock { $0.isEmpty })
        w.answer(.applied(body: "{\"stored\":\"demo/shop\",\"resourceVersion\":\"5\"}\n"))
        #expect(answered.wait(timeoutNanos: 5_000_000_000))
        let got = responses.withLock { $0 }
        #expect(got.count == 1)
        #expect(got.first?.status == 200)
        #expect(got.first?.contentType == "application/json")
        #expect(got.first.map { String(decoding: $0.body, as: UTF8.self) } == "{\"stored\":\"demo/shop\",\"resourceVersion\":\"5\"}\n")

        // A refusal comes back the same way, as an error body with its status.
        h.handle(Self.request("DELETE", ifMatch: "3")) { r in
            responses.withLock { $0.append(r) }
            answered.signal()
        }
        #expect(w.called.wait(timeoutNanos: 5_000_000_000))
        w.answer(.refused(status: 409, message: "demo/shop: resourceVersion 3 does not match the stored one: 5"))
        #expect(answered.wait(timeoutNanos: 5_000_000_000))
        let last = responses.withLock { $0.last }
        #expect(last?.status == 409)
        #expect(last.map { String(decoding: $0.body, as: UTF8.self) }
                == "{\"error\":\"demo/shop: resourceVersion 3 does not match the stored one: 5\"}\n")
        #expect(responses.withLock { $0.count } == 2)
    }

    /// The blocking `handle` (what the HTTP/1 connection thread uses) waits for an answer given
    /// on another thread.
    @Test(.timeLimit(.minutes(1))) func theBlockingHandleWaitsForALateAnswer() {
        let w = TestWriter(immediate: nil)
        let h = AdminHandlers(server: Fixtures.server(), writer: w)
        let answerer = OSThread.spawn(name: "answerer") {
            guard w.called.wait(timeoutNanos: 10_000_000_000) else { return }
            w.answer(.refused(status: 503, message: "the registry store is unavailable"))
        }
        let (status, body) = Self.call(h, Self.request("PUT", body: Self.body()))
        answerer.join()
        #expect(status == 503)
        #expect(body.contains("unavailable"))
    }

    @Test func readsGoToTheWriter() {
        let h = AdminHandlers(server: Fixtures.server(), writer: TestWriter())
        #expect(Self.call(h, Self.request("GET", "/v1/serviceentries/demo/known")) == (200, "{\"known\":true}\n"))
        #expect(Self.call(h, Self.request("GET", "/v1/serviceentries/demo/unknown")).0 == 404)
        #expect(Self.call(h, Self.request("GET", "/v1/serviceentries")) == (200, "{\"items\":[]}\n"))
    }
}
