/// `fastpilot store import FILE` and `fastpilot store export`: a `kubectl get -o json` List into
/// the etcd store (validated first, then in batched transactions) and out of it.
public enum StoreTool {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        init(_ d: String) { description = d }
    }

    /// Puts per transaction: etcd's default --max-txn-ops is 128.
    public static let batchSize = 64

    /// Writes every ServiceEntry of the file; returns what it did, for the terminal.
    public static func importFile(_ path: String, url: String, prefix: String) throws -> String {
        let bytes = try RegistryLoader.readFile(path: path).0
        // The whole file is validated before anything is written.
        _ = try ServiceEntryParser.parse(bytes, source: path)
        let root = try JSONReader.parse(bytes)
        let items: [JSONValue]
        switch root {
        case let .object(o) where o["items"] != nil:
            guard case let .array(a)? = o["items"] else { throw Failure("\(path): items is not an array") }
            items = a
        case let .array(a): items = a
        default: items = [root]
        }
        var puts: [EtcdRequestOp] = []
        for item in items {
            if case let .string(kind)? = item["kind"], kind != "ServiceEntry" { continue }
            guard case let .string(name)? = item["metadata"]?["name"] else { continue }
            var namespace = "default"
            if case let .string(ns)? = item["metadata"]?["namespace"] { namespace = ns }
            let value = item.setting(["metadata", "resourceVersion"], to: nil).serialized()
            let key = Array("\(prefix)serviceentries/\(namespace)/\(name)".utf8)
            puts.append(.put(EtcdPutRequest(key: key, value: Array(value.utf8))))
        }
        var revision: Int64 = 0
        var batches = 0
        try withClient(url) { client, run in
            var start = 0
            while start < puts.count {
                let batch = Array(puts[start..<min(start + batchSize, puts.count)])
                let r: EtcdTxnResponse = try run { done in client.txn(EtcdTxnRequest(success: batch), completion: done) }
                revision = r.header.revision
                batches += 1
                start += batch.count
            }
        }
        return "imported \(puts.count) ServiceEntries from \(path) in \(batches) transactions (revision \(revision))\n"
    }

    /// Every ServiceEntry under the prefix, as a List with each item's resourceVersion.
    public static func export(url: String, prefix: String) throws -> String {
        let p = Array("\(prefix)serviceentries/".utf8)
        var items: [JSONValue] = []
        try withClient(url) { client, run in
            let r: EtcdRangeResponse = try run { done in client.range(EtcdRangeRequest(key: p, rangeEnd: Etcd.prefixEnd(p)), completion: done) }
            for kv in r.kvs {
                guard let object = try? JSONReader.parse(kv.value) else {
                    throw Failure("\(String(decoding: kv.key, as: UTF8.self)): not JSON; fix or delete the key")
                }
                items.append(object.setting(["metadata", "resourceVersion"], to: .string(String(kv.modRevision))))
            }
        }
        let list = JSONValue.object(["apiVersion": .string("v1"), "kind": .string("List"), "items": .array(items)])
        return list.serialized(pretty: true) + "\n"
    }

    /// Connects to the first endpoint that answers, on a loop of its own, and runs `body` with
    /// a way to wait for one call's result.
    private static func withClient(_ url: String,
                                   _ body: (EtcdClient, _ run: RunCall) throws -> Void) throws {
        guard let endpoints = EtcdClient.Endpoint.parse(url) else { throw Failure("--store \(url): expected etcd://HOST:PORT[,...]") }
        let group = try EventLoopGroup(threads: 1)
        defer { group.shutdown() }
        let loop = group.loops[0]
        let client = UnsafeSendableBox(EtcdClient(endpoints: endpoints, loop: loop))
        var lastError = "no endpoint"
        var connected = false
        for _ in endpoints {
            let result = LateBox<String>()
            let done = Semaphore()
            loop.execute {
                do { try client.value.connect() } catch {
                    result.value = "\(client.value.endpoint): \(error)"
                    client.value.advance()
                }
                done.signal()
            }
            done.wait()
            if let e = result.value { lastError = e } else { connected = true; break }
        }
        guard connected else { throw Failure("cannot reach etcd: \(lastError)") }
        try body(client.value, RunCall(loop: loop))
    }

    /// Runs one client call on the loop and waits for its result.
    struct RunCall {
        let loop: any IOLoop
        func callAsFunction<T: Sendable>(_ start: @escaping (@escaping (Result<T, EtcdClient.Failure>) -> Void) -> Void) throws -> T {
            let box = LateBox<Result<T, EtcdClient.Failure>>()
            let done = Semaphore()
            // The calling thread waits below: the client is only ever used on the loop.
            let call = UnsafeSendableBox(start)
            loop.execute {
                call.value { r in box.value = r; done.signal() }
            }
            done.wait()
            switch box.value! {
            case let .success(v): return v
            case let .failure(e): throw Failure("etcd: \(e)")
            }
        }
    }
}
