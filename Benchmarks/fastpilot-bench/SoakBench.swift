#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import FastPush

/// `make soak`: fastpilot serve under a bounded run of everyday trouble, with the server's RSS
/// sampled at every interval. Four things run at once:
/// - steady streams (one loadgen process holding them open, ACKing every push);
/// - endpoint churn through the admin API, with a full change (a service added or removed)
///   every twentieth write;
/// - reconnects: short loadgen runs that connect, sync and leave, every third one killed with
///   SIGKILL mid-way;
/// - a slow client that never reads past a 1 KiB HTTP/2 window, so the server must drop it after
///   the send timeout; it comes back each time.
/// The verdict: RSS is flat if the last sample is within 5% (or 2 MiB) of the sample taken after
/// the first interval (the warm-up).
enum SoakBench {
    struct Options {
        var durationSeconds = 600
        var intervalSeconds = 60
        var steadyStreams = 2000
        var steadyConns = 20
        var reconnectStreams = 100
        var churnEveryMillis = 250
        var sendTimeout = "3s"

        static func parse(_ args: [String]) -> Options {
            var o = Options()
            var i = 0
            func seconds(_ s: String) -> Int {
                if let n = Int(s) { return n }
                if let ns = DurationText.nanos(s) { return Int(ns / 1_000_000_000) }
                print("soak: cannot read the duration '\(s)' (use 600, 600s or 10m)")
                exit(2)
            }
            while i < args.count {
                let a = args[i], v = i + 1 < args.count ? args[i + 1] : ""
                switch a {
                case "--duration": o.durationSeconds = seconds(v); i += 1
                case "--interval": o.intervalSeconds = seconds(v); i += 1
                case "--streams": o.steadyStreams = Int(v) ?? o.steadyStreams; i += 1
                default: break
                }
                i += 1
            }
            // Short runs (trying the soak out) still get several samples.
            o.intervalSeconds = max(5, min(o.intervalSeconds, o.durationSeconds / 6))
            return o
        }
    }

    /// What the driver threads count.
    final class Counters: Sendable {
        let stop = Atomic<Bool>(false)
        let churnWrites = Atomic<Int>(0)
        let churnErrors = Atomic<Int>(0)
        let reconnectRuns = Atomic<Int>(0)
        let reconnectFailures = Atomic<Int>(0)
        let slowClients = Atomic<Int>(0)
        let slowDropped = Atomic<Int>(0)
    }

    struct Sample {
        var seconds: Int
        var rss: Int
        var streams: Double
        var pushes: Double
        var writeTimeouts: Double
        var heapInUse: Int
    }

    static func run(_ o: Options) throws -> Bool {
        let dir = "/tmp/fastpilot-soak-\(getpid())"
        mkdir(dir, 0o755)
        let registryPath = "\(dir)/registry.json"
        try ScaleBench.registry(services: 100, endpoints: 10).write(toFile: registryPath, atomically: true, encoding: .utf8)
        let xds = ScaleBench.freePort(), admin = ScaleBench.freePort()
        let bin = "\(ScaleBench.binDir)/fastpilot"
        let server = try ScaleBench.spawn(bin, ["serve", "--registry", registryPath, "--xds-address", "127.0.0.1:\(xds)",
                                                "--admin-port", String(admin), "--log-level", "info",
                                                "--send-timeout", o.sendTimeout, "--drain-duration", "5s"],
                                          stdout: "\(dir)/server.log")
        var serverReaped = false
        defer { if !serverReaped { kill(server, SIGKILL); var st: Int32 = 0; waitpid(server, &st, 0) } }
        try ScaleBench.waitReady(admin)
        print("soak: \(o.durationSeconds) s, RSS every \(o.intervalSeconds) s; server pid \(server), logs in \(dir)")
        print("soak: \(o.steadyStreams) steady streams over \(o.steadyConns) connections, endpoint churn every \(o.churnEveryMillis) ms,"
              + " reconnects of \(o.reconnectStreams) streams, one slow client (send timeout \(o.sendTimeout))")

        let c = Counters()
        let common = ["--target", "127.0.0.1:\(xds)", "--admin", "127.0.0.1:\(admin)", "--namespaces", "bench", "--no-progress"]
        let steady = try ScaleBench.spawn(bin, ["loadgen", "--streams", String(o.steadyStreams), "--conns", String(o.steadyConns),
                                                "--trigger", "none", "--hold", "\(o.durationSeconds)s", "--timeout", "60s",
                                                "--node-prefix", "steady", "--json", "\(dir)/steady.json"] + common,
                                          stdout: "\(dir)/steady.out")
        let threads = [
            OSThread.spawn(name: "soak-churn") { churn(port: admin, every: o.churnEveryMillis, c) },
            OSThread.spawn(name: "soak-reconnect") { reconnects(bin: bin, args: common, streams: o.reconnectStreams, dir: dir, c) },
            OSThread.spawn(name: "soak-slow") { slowClients(port: xds, c) },
        ]

        var samples: [Sample] = []
        let t0 = MonotonicClock.nanos()
        func line(_ cells: [String]) {
            let widths = [7, 12, 13, 9, 10, 15, 13, 15, 13]
            print(zip(cells, widths).map { $0 + String(repeating: " ", count: max(1, $1 - $0.count)) }.joined())
            fflush(nil)
        }
        line(["t", "server RSS", "heap in use", "streams", "pushes", "write timeouts", "churn writes", "reconnect runs", "slow dropped"])
        func sample() -> Bool {
            guard let ps = ProcStats.of(pid: server) else { return false }
            let m = metrics(admin)
            let s = Sample(seconds: Int((MonotonicClock.nanos() - t0) / 1_000_000_000), rss: ps.rssBytes,
                           streams: m["pilot_xds{version=\"fastpilot\"}"] ?? 0, pushes: m.filter { $0.key.hasPrefix("pilot_xds_pushes{") }.values.reduce(0, +),
                           writeTimeouts: m["pilot_xds_write_timeout"] ?? 0, heapInUse: heapInUse(admin))
            samples.append(s)
            line(["\(s.seconds) s", "\(mib(s.rss)) MiB", "\(mib(s.heapInUse)) MiB", "\(Int(s.streams))", "\(Int(s.pushes))", "\(Int(s.writeTimeouts))",
                  "\(c.churnWrites.load(ordering: .relaxed))", "\(c.reconnectRuns.load(ordering: .relaxed))",
                  "\(c.slowDropped.load(ordering: .relaxed))"])
            return true
        }
        var alive = sample()
        var next = UInt64(o.intervalSeconds) * 1_000_000_000
        while alive && MonotonicClock.nanos() - t0 < UInt64(o.durationSeconds) * 1_000_000_000 {
            OSThread.sleep(nanos: 200_000_000)
            if MonotonicClock.nanos() - t0 >= next {
                alive = sample()
                next += UInt64(o.intervalSeconds) * 1_000_000_000
            }
        }
        c.stop.store(true, ordering: .relaxed)
        for t in threads { t.join() }
        if alive { alive = sample() }

        // The steady loadgen ends its hold by itself.
        let steadyStatus = reap(steady, within: 90)
        let steadyReport = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/steady.json")))) as? [String: Any]
        let hold = steadyReport?["hold"] as? [String: Any]

        // Graceful stop: SIGTERM, then it must exit 0 within the drain duration (plus slack).
        let tStop = MonotonicClock.nanos()
        kill(server, SIGTERM)
        let serverStatus = reap(server, within: 15)
        serverReaped = serverStatus != nil
        let stopMillis = (MonotonicClock.nanos() - tStop) / 1_000_000

        let log = (try? String(contentsOfFile: "\(dir)/server.log", encoding: .utf8)) ?? ""
        let logLines = log.split(separator: "\n")
        let crashes = logLines.filter { $0.contains("Fatal error") || $0.contains("Crash") || $0.contains("💣") }.count

        print("")
        let base = samples.count > 1 ? samples[1] : samples.first
        var flat = false
        if let base, let last = samples.last {
            let growth = last.rss - base.rss
            let allowed = max(base.rss / 20, 2 << 20)
            flat = growth <= allowed
            let slope = slopeKiBPerMinute(Array(samples.dropFirst()))
            print("RSS: \(mib(samples[0].rss)) MiB at start, \(mib(base.rss)) MiB after warm-up, \(mib(last.rss)) MiB at the end"
                  + " (\(growth >= 0 ? "+" : "")\(mib(growth)) MiB, \(String(format1: Double(growth) / Double(base.rss) * 100))%),"
                  + " peak \(mib(samples.map(\.rss).max()!)) MiB, trend \(String(format1: slope)) KiB/min")
            print("RSS \(flat ? "stayed flat" : "DID NOT stay flat") (limit: +5% or +2 MiB over the post-warm-up sample)")
        }
        print("churn: \(c.churnWrites.load(ordering: .relaxed)) admin writes, \(c.churnErrors.load(ordering: .relaxed)) failed")
        print("reconnects: \(c.reconnectRuns.load(ordering: .relaxed)) loadgen runs of \(o.reconnectStreams) streams, "
              + "\(c.reconnectFailures.load(ordering: .relaxed)) failed to sync")
        print("slow client: \(c.slowClients.load(ordering: .relaxed)) opened, \(c.slowDropped.load(ordering: .relaxed)) dropped by the server's send timeout")
        print("steady streams: exit \(steadyStatus.map(String.init) ?? "timeout"), "
              + "\(hold?["messages"] as? Int ?? -1) pushes received while holding, \(hold?["streams_ended"] as? Int ?? -1) streams ended")
        print("server: \(logLines.count) log lines, \(crashes) crash reports; SIGTERM -> exit \(serverStatus.map(String.init) ?? "none") in \(stopMillis) ms")
        let ok = flat && alive && steadyStatus == 0 && (hold?["streams_ended"] as? Int) == 0 && serverStatus == 0
            && c.reconnectFailures.load(ordering: .relaxed) == 0 && c.churnErrors.load(ordering: .relaxed) == 0
            && c.slowDropped.load(ordering: .relaxed) > 0 && crashes == 0
        print("soak: \(ok ? "PASS" : "FAIL")")
        return ok
    }

    // MARK: drivers

    static func churn(port: UInt16, every millis: Int, _ c: Counters) {
        var i = 0
        while !c.stop.load(ordering: .relaxed) {
            i += 1
            let (method, path, body): (String, String, String)
            if i % 20 == 0 {
                // A full change: the extra service comes and goes.
                let add = (i / 20) % 2 == 1
                (method, path, body) = (add ? "PUT" : "DELETE", "/v1/serviceentries/bench/churn-extra",
                                        add ? ScaleBench.serviceEntry(100, endpoints: 3, name: "churn-extra") : "")
            } else {
                let s = i % 100
                (method, path, body) = ("PUT", "/v1/serviceentries/bench/svc-\(s)", ScaleBench.serviceEntry(s, endpoints: 10, generation: i))
            }
            let r = try? HTTPClient.request(method, host: "127.0.0.1", port: port, path: path, body: Array(body.utf8), timeoutSeconds: 5)
            if r?.status == 200 { c.churnWrites.wrappingAdd(1, ordering: .relaxed) } else { c.churnErrors.wrappingAdd(1, ordering: .relaxed) }
            OSThread.sleep(nanos: UInt64(millis) * 1_000_000)
        }
    }

    static func reconnects(bin: String, args: [String], streams: Int, dir: String, _ c: Counters) {
        var run = 0
        while !c.stop.load(ordering: .relaxed) {
            run += 1
            let abrupt = run % 3 == 0
            guard let pid = try? ScaleBench.spawn(bin, ["loadgen", "--streams", String(streams), "--trigger", "none", "--timeout", "30s",
                                                        "--node-prefix", "reconnect"] + args, stdout: "\(dir)/reconnect.out") else {
                c.reconnectFailures.wrappingAdd(1, ordering: .relaxed)
                continue
            }
            if abrupt {
                OSThread.sleep(nanos: 150_000_000)
                kill(pid, SIGKILL)
                _ = reap(pid, within: 10)
            } else if reap(pid, within: 40) != 0 {
                c.reconnectFailures.wrappingAdd(1, ordering: .relaxed)
            }
            c.reconnectRuns.wrappingAdd(1, ordering: .relaxed)
            OSThread.sleep(nanos: 300_000_000)
        }
    }

    /// Subscribes to wildcard CDS with a 1 KiB stream window it never opens, and never reads.
    static func slowClients(port: UInt16, _ c: Counters) {
        let hello = slowClientBytes()
        while !c.stop.load(ordering: .relaxed) {
            guard let fd = try? Socket.connect(host: "127.0.0.1", port: port) else { OSThread.sleep(nanos: 500_000_000); continue }
            Socket.setReceiveBuffer(fd, bytes: 4096)
            c.slowClients.wrappingAdd(1, ordering: .relaxed)
            _ = hello.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            // Wait for the server to hang up (POLLRDHUP shows the FIN even with unread data).
            var pfd = pollfd(fd: fd, events: 0x2000 /* POLLRDHUP */, revents: 0)
            while !c.stop.load(ordering: .relaxed) {
                if poll(&pfd, 1, 200) > 0 {
                    c.slowDropped.wrappingAdd(1, ordering: .relaxed)
                    break
                }
            }
            close(fd)
        }
    }

    static func slowClientBytes() -> [UInt8] {
        var settings = H2Settings()
        settings.initialWindowSize = 1024
        settings.connectionWindowSize = 65_535
        let h2 = H2Connection(role: .client, settings: settings)
        let grpc = GRPCClientConnection(h2: h2, authority: "soak")
        final class Ignore: GRPCClientCallDelegate {
            func callReceived(_ call: GRPCClientCall, message: UnsafeRawBufferPointer) {}
            func callEnded(_ call: GRPCClientCall, status: GRPCStatus) {}
        }
        var node = Node()
        node.id = "sidecar~10.9.9.9~slow.bench~bench.svc.cluster.local"
        node.metadata = ProtoStruct(fields: ["NAMESPACE": .string("bench")])
        var request = DiscoveryRequest()
        request.node = node
        request.typeURL = XdsType.cds.typeURL
        let call = grpc.startCall(path: ADSService.streamPath, delegate: Ignore())!
        _ = call.send(bytes: request.encode())
        var out = OutboundBuffer()
        _ = h2.produce(into: &out, budget: 1 << 20)
        return out.drain()
    }

    // MARK: helpers

    static func reap(_ pid: pid_t, within seconds: Int) -> Int32? {
        let deadline = MonotonicClock.nanos() + UInt64(seconds) * 1_000_000_000
        var st: Int32 = 0
        while MonotonicClock.nanos() < deadline {
            if waitpid(pid, &st, WNOHANG) == pid {
                // WIFEXITED / WEXITSTATUS, spelled out (the C macros are not imported).
                return (st & 0x7f) == 0 ? (st >> 8) & 0xff : 128 + (st & 0x7f)
            }
            OSThread.sleep(nanos: 50_000_000)
        }
        return nil
    }

    static func metrics(_ port: UInt16) -> [String: Double] {
        guard let r = try? HTTPClient.request("GET", host: "127.0.0.1", port: port, path: "/metrics", timeoutSeconds: 5) else { return [:] }
        var out: [String: Double] = [:]
        for line in r.text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let sp = line.lastIndex(of: " "), let v = Double(line[line.index(after: sp)...]) else { continue }
            out[String(line[..<sp])] = v
        }
        return out
    }

    /// malloc's bytes in use, from /debug/memory: separates live growth from allocator slack.
    static func heapInUse(_ port: UInt16) -> Int {
        guard let r = try? HTTPClient.request("GET", host: "127.0.0.1", port: port, path: "/debug/memory", timeoutSeconds: 5),
              let o = try? JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any] else { return 0 }
        return o["heap_in_use"] as? Int ?? 0
    }

    static func mib(_ bytes: Int) -> String { String(format1: Double(bytes) / Double(1 << 20)) }

    static func slopeKiBPerMinute(_ s: [Sample]) -> Double {
        guard s.count > 1 else { return 0 }
        let xs = s.map { Double($0.seconds) / 60 }, ys = s.map { Double($0.rss) / 1024 }
        let mx = xs.reduce(0, +) / Double(xs.count), my = ys.reduce(0, +) / Double(ys.count)
        let num = zip(xs, ys).reduce(0) { $0 + ($1.0 - mx) * ($1.1 - my) }
        let den = xs.reduce(0) { $0 + ($1 - mx) * ($1 - mx) }
        return den == 0 ? 0 : num / den
    }
}
