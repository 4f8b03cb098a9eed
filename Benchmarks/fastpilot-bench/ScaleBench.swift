#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import FastPush

/// End to end: `fastpilot serve` and `fastpilot loadgen` as separate processes on this machine,
/// plus the kernel floor for the same bytes per connection, measured in the same run.
enum ScaleBench {
    struct Scenario {
        var streams: Int
        var conns: Int
        var services = 100
        var endpoints = 10
        var rounds = 3
        var mode = "envoy"
        /// "sotw" or "delta" (loadgen --protocol).
        var xdsProtocol = "sotw"
        /// A full change's new service on a port of its own (loadgen --full-new-port).
        var fullNewPort = false
        var triggers = "endpoint,full"
        /// Delta only: after the rounds, every stream reconnects with what it holds; with
        /// `restart`, to a new server process on the same registry and port.
        var reconnect = false
        var restart = false
        /// Where the server's registry lives: "file" (--registry) or "etcd" (--store, a member
        /// started for the row, loaded with `fastpilot store import`).
        var registrySource = "file"
        /// Time GET /debug/pushz every 100 ms during the run (Row.pushzSeconds).
        var pollPushz = false
        /// xDS over mutual TLS: the server's TLS listener only, the loadgen with a client
        /// certificate (Tests/tls/make-test-certs.sh makes them for the row).
        var tls = false
        /// Record both processes with `perf record -e cpu-clock -g` into this directory.
        var profileDir: String?
        /// EDS debounce off and a 1 ms quiet period: the rows measure the fan-out, not the wait.
        var serverArgs: [String] = ["--debounce-after", "1ms", "--eds-debounce", "false"]
        var label: String {
            (streams == conns ? "\(streams) streams, 1 per connection" : "\(streams) streams over \(conns) connections")
                + (mode == "grpc" ? " (grpc mode)" : "") + (xdsProtocol == "delta" ? ", Delta" : "")
                + (services != 100 ? ", \(services) services" : "")
        }
    }

    struct Row {
        var scenario: Scenario
        var report: [String: Any]
        var floorSeconds: Double
        var floorBytes: Int
        /// With pollPushz: each /debug/pushz answer's time, sorted.
        var pushzSeconds: [Double] = []
    }

    static let binDir: String = {
        let exe = String(cString: realpath("/proc/self/exe", nil))
        return String(exe[..<exe.lastIndex(of: "/")!])
    }()

    /// The registry: `services` ServiceEntries in namespace bench, `endpoints` each over three zones.
    static func registry(services: Int, endpoints: Int) -> String {
        let items = (0..<services).map { serviceEntry($0, endpoints: endpoints) }
        return "{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[\(items.joined(separator: ",\n"))]}\n"
    }

    /// ServiceEntry `svc-S`; `generation` moves its endpoint addresses (an endpoint-only change).
    static func serviceEntry(_ s: Int, endpoints: Int, generation: Int = 0, name: String? = nil) -> String {
        var eps: [String] = []
        for e in 0..<endpoints {
            eps.append("{\"address\":\"10.\(s / 250).\(s % 250).\((e + generation) % 250 + 1)\",\"locality\":\"bench/zone-\(e % 3)\",\"labels\":{\"app\":\"svc-\(s)\"}}")
        }
        let name = name ?? "svc-\(s)"
        return """
        {"apiVersion":"networking.istio.io/v1","kind":"ServiceEntry","metadata":{"name":"\(name)","namespace":"bench"},
         "spec":{"hosts":["\(name).bench.svc.cluster.local"],"ports":[{"number":8080,"name":"grpc","protocol":"GRPC"}],
                 "resolution":"STATIC","location":"MESH_INTERNAL","endpoints":[\(eps.joined(separator: ","))]}}
        """
    }

    /// A CA, the server's certificate and the loadgen's (namespace bench), by the project's script.
    static func makeCertificates(dir: String) throws -> String {
        var base = binDir
        for _ in 0..<6 {
            let script = base + "/Tests/tls/make-test-certs.sh"
            if access(script, R_OK) == 0 {
                let pid = try spawn("/bin/bash", [script, dir, "loadgen=spiffe://cluster.local/ns/bench/sa/loadgen"], stdout: "\(dir).log")
                var st: Int32 = 0
                waitpid(pid, &st, 0)
                guard st == 0 else { throw SocketError(operation: "make-test-certs.sh failed (see \(dir).log)", errno: EIO) }
                return dir
            }
            base = String(base[..<(base.lastIndex(of: "/") ?? base.startIndex)])
        }
        throw SocketError(operation: "Tests/tls/make-test-certs.sh not found above \(binDir)", errno: ENOENT)
    }

    static func freePort() -> UInt16 {
        let (fd, port) = try! Socket.listen(host: "127.0.0.1", port: 0)
        close(fd)
        return port
    }

    static func run(_ sc: Scenario) throws -> Row {
        let dir = "/tmp/fastpilot-bench-\(getpid())"
        mkdir(dir, 0o755)
        let registryPath = "\(dir)/registry.json"
        try registry(services: sc.services, endpoints: sc.endpoints).write(toFile: registryPath, atomically: true, encoding: .utf8)
        let xds = freePort(), admin = freePort()
        var source = ["--registry", registryPath]
        var etcd: pid_t?
        defer { if let etcd { kill(etcd, SIGTERM); var st: Int32 = 0; waitpid(etcd, &st, 0) } }
        if sc.registrySource == "etcd" {
            let (pid, url) = try startEtcd(dir: dir)
            etcd = pid
            let imp = try spawn("\(binDir)/fastpilot", ["store", "import", registryPath, "--store", url], stdout: "\(dir)/import.log")
            var st: Int32 = 0
            waitpid(imp, &st, 0)
            guard st == 0 else { throw SocketError(operation: "fastpilot store import failed (see \(dir)/import.log)", errno: EIO) }
            source = ["--store", url]
        }
        var listen = ["--xds-address", "127.0.0.1:\(xds)"]
        var clientTLS: [String] = []
        if sc.tls {
            let certs = try makeCertificates(dir: "\(dir)/certs")
            listen = ["--xds-plaintext=false", "--xds-tls-address", "127.0.0.1:\(xds)", "--tls-cert", "\(certs)/server.crt",
                      "--tls-key", "\(certs)/server.key", "--tls-client-ca", "\(certs)/ca.crt",
                      // 10k handshakes at once take longer than the 10 s default on two shared cores.
                      "--tls-handshake-timeout", "120s"]
            clientTLS = ["--tls-ca", "\(certs)/ca.crt", "--tls-cert", "\(certs)/loadgen.crt", "--tls-key", "\(certs)/loadgen.key"]
        }
        let serverArgs = ["serve"] + source + listen + ["--admin-port", String(admin), "--log-level", "warn"] + sc.serverArgs
        let server = try spawn("\(binDir)/fastpilot", serverArgs, stdout: "\(dir)/server.log")
        let pidFile = "\(dir)/server.pid"
        try String(server).write(toFile: pidFile, atomically: true, encoding: .utf8)
        defer {
            kill(server, SIGTERM); var st: Int32 = 0; waitpid(server, &st, 0)
            // A server the restart script started is not our child: stopped by its pid file.
            if let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
               let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid != server {
                kill(pid, SIGTERM)
                for _ in 0..<100 where kill(pid, 0) == 0 { usleep(50_000) }
            }
        }
        try waitReady(admin)
        let json = "\(dir)/loadgen.json"
        var args = ["loadgen", "--target", "127.0.0.1:\(xds)", "--admin", "127.0.0.1:\(admin)", "--streams", String(sc.streams),
                    "--conns", String(sc.conns), "--rounds", String(sc.rounds), "--namespaces", "bench", "--mode", sc.mode,
                    "--server-pid", String(server), "--json", json, "--no-progress", "--timeout", "120s",
                    "--trigger-service", "bench/svc-0", "--protocol", sc.xdsProtocol] + clientTLS
        if sc.mode == "grpc" { args += ["--grpc-target", "svc-0.bench.svc.cluster.local:8080", "--trigger", "endpoint"] }
        else { args += ["--trigger", sc.triggers] }
        if sc.fullNewPort { args += ["--full-new-port"] }
        if sc.reconnect {
            args += ["--reconnect"]
            if sc.restart {
                // Stops the server (SIGTERM, as a rolling restart would) and starts a new one on the
                // same registry and ports; the loadgen reconnects once it is ready.
                let script = "\(dir)/restart.sh"
                let quoted = serverArgs.map { "'\($0)'" }.joined(separator: " ")
                let lines = [
                    // The first server is the bench's child: once it exits it is a zombie until reaped.
                    "pid=$(cat \(pidFile)); kill -TERM $pid",
                    "while kill -0 $pid 2>/dev/null && ! grep -q '^State:.*Z' /proc/$pid/status 2>/dev/null; do sleep 0.05; done",
                    "setsid '\(binDir)/fastpilot' \(quoted) >>'\(dir)/server.log' 2>&1 </dev/null & echo $! > \(pidFile)",
                    "for i in $(seq 200); do curl -sf http://127.0.0.1:\(admin)/ready >/dev/null 2>&1 && exit 0; sleep 0.05; done; exit 1",
                ]
                try (lines.joined(separator: "\n") + "\n").write(toFile: script, atomically: true, encoding: .utf8)
                args += ["--reconnect-cmd", "sh \(script)"]
            }
        }
        let lg = try spawn("\(binDir)/fastpilot", args, stdout: "\(dir)/loadgen.out")
        var perfs: [pid_t] = []
        if let out = sc.profileDir {
            for (name, pid) in [("server", server), ("loadgen", lg)] {
                perfs.append(try spawn("/usr/bin/perf", ["record", "-e", "cpu-clock", "-g", "-F", "999", "-p", String(pid),
                                                         "-o", "\(out)/\(name).perf.data"], stdout: "\(out)/\(name).perf.log"))
            }
        }
        // While the load runs: how long /debug/pushz takes to answer (every 100 ms).
        let polling = Atomic<Bool>(sc.pollPushz)
        let pollTimes = Mutex<[Double]>([])
        let poller = sc.pollPushz ? OSThread.spawn(name: "pushz-poll") {
            while polling.load(ordering: .relaxed) {
                let t0 = MonotonicClock.nanos()
                if let r = try? HTTPClient.request("GET", host: "127.0.0.1", port: admin, path: "/debug/pushz", timeoutSeconds: 5), r.status == 200 {
                    let d = Double(MonotonicClock.nanos() - t0) / 1e9
                    pollTimes.withLock { $0.append(d) }
                }
                usleep(100_000)
            }
        } : nil
        var st: Int32 = 0
        waitpid(lg, &st, 0)
        polling.store(false, ordering: .relaxed)
        poller?.join()
        for p in perfs { kill(p, SIGINT); var pst: Int32 = 0; waitpid(p, &pst, 0) }
        guard let data = FileManager.default.contents(atPath: json),
              let report = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw SocketError(operation: "loadgen produced no report (see \(dir)/loadgen.out)", errno: EIO)
        }
        // The floor: the bytes of one endpoint push per connection, to `conns` sockets.
        let phases = report["phases"] as? [[String: Any]] ?? []
        let ep = phases.filter { ($0["name"] as? String ?? "").hasPrefix("endpoint") }
        let epBytes = ep.compactMap { $0["bytes"] as? Int }.sorted()
        let perConn = max(64, (epBytes.isEmpty ? 1024 : epBytes[epBytes.count / 2]) / sc.conns)
        let floor = try FloorBench.measure(sockets: sc.conns, bytes: perConn, reps: 5)
        return Row(scenario: sc, report: report, floorSeconds: floor.median, floorBytes: perConn,
                   pushzSeconds: pollTimes.withLock { $0 }.sorted())
    }

    /// One etcd member (Debian's etcd-server) on free loopback ports, its data in `dir`.
    static func startEtcd(dir: String) throws -> (pid_t, String) {
        let client = freePort(), peer = freePort()
        let pid = try spawn("/usr/bin/etcd", ["--name", "bench", "--data-dir", "\(dir)/etcd",
                                              "--listen-client-urls", "http://127.0.0.1:\(client)",
                                              "--advertise-client-urls", "http://127.0.0.1:\(client)",
                                              "--listen-peer-urls", "http://127.0.0.1:\(peer)",
                                              "--initial-advertise-peer-urls", "http://127.0.0.1:\(peer)",
                                              "--initial-cluster", "bench=http://127.0.0.1:\(peer)"], stdout: "\(dir)/etcd.log")
        for _ in 0..<200 {
            if let fd = try? Socket.connect(host: "127.0.0.1", port: client, nonBlocking: false) { close(fd); return (pid, "etcd://127.0.0.1:\(client)") }
            usleep(50_000)
        }
        kill(pid, SIGTERM)
        throw SocketError(operation: "etcd did not start (see \(dir)/etcd.log)", errno: ETIMEDOUT)
    }

    static func waitReady(_ port: UInt16) throws {
        for _ in 0..<200 {
            if let r = try? HTTPClient.request("GET", host: "127.0.0.1", port: port, path: "/ready", timeoutSeconds: 1), r.status == 200 { return }
            usleep(50_000)
        }
        throw SocketError(operation: "server not ready on :\(port)", errno: ETIMEDOUT)
    }

    /// Starts `path`: stdout and stderr into the file `stdout`, or else descriptors duplicated
    /// as `dups` says (from, to).
    static func spawn(_ path: String, _ args: [String], stdout: String? = nil, dups: [(Int32, Int32)] = []) throws -> pid_t {
        var pid: pid_t = 0
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let stdout {
            posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        for (from, to) in dups { posix_spawn_file_actions_adddup2(&actions, from, to) }
        var cargs = ([path] + args).map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        let rc = posix_spawn(&pid, path, &actions, nil, &cargs, environ)
        guard rc == 0 else { throw SocketError(operation: "spawn \(path)", errno: rc) }
        return pid
    }

    static func ms(_ v: Any?) -> String {
        guard let d = v as? Double else { return "-" }
        return d * 1000 >= 100 ? String(Int((d * 1000).rounded())) : String(format1: d * 1000)
    }

    static func median(_ phases: [[String: Any]], _ prefix: String, _ key: String) -> Double? {
        let v = phases.filter { ($0["name"] as? String ?? "").hasPrefix(prefix) }.compactMap { $0[key] as? Double }.sorted()
        return v.isEmpty ? nil : v[v.count / 2]
    }

    static func table(_ rows: [Row]) -> String {
        var out: [[String]] = []
        for r in rows {
            let p = r.report["phases"] as? [[String: Any]] ?? []
            let sync = p.first { ($0["name"] as? String) == "initial sync" }
            let epMax = median(p, "endpoint", "max_s"), fullMax = median(p, "full", "max_s")
            let rounds = p.filter { ($0["name"] as? String ?? "") != "initial sync" }
            let cpu = rounds.compactMap { $0["server_cpu_s"] as? Double }
            let lgShare = rounds.compactMap { ph -> Double? in
                guard let l = ph["loadgen_cpu_s"] as? Double, let w = ph["wall_s"] as? Double, w > 0 else { return nil }
                return l / w
            }
            let ok = (r.report["success"] as? Bool) == true
            out.append([
                r.scenario.label + (ok ? "" : " (INCOMPLETE)"),
                ms(sync?["p50_s"]) + " / " + ms(sync?["max_s"]),
                ms(median(p, "endpoint", "p50_s")) + " / " + ms(median(p, "endpoint", "p99_s")) + " / " + ms(epMax),
                ms(median(p, "full", "p50_s")) + " / " + ms(median(p, "full", "p99_s")) + " / " + ms(fullMax),
                "\(ms(r.floorSeconds)) (\(r.floorBytes) B)",
                epMax.map { String(format1: $0 / r.floorSeconds) + "x" } ?? "-",
                (r.report["server_rss_per_stream"] as? Double).map { "\(Int($0.rounded()))" } ?? "-",
                cpu.isEmpty ? "-" : String(format1: cpu.reduce(0, +) / Double(cpu.count) * 1000),
                lgShare.isEmpty ? "-" : String(format1: lgShare.max()! * 100) + "%",
            ])
        }
        return Harness.table("End to end: fastpilot serve + fastpilot loadgen (envoy mode; medians of the rounds; ms)",
                             header: ["scenario", "sync p50 / max", "endpoint p50 / p99 / max", "full p50 / p99 / max",
                                      "floor (bytes/conn)", "endpoint max / floor", "server RSS B/stream",
                                      "server CPU ms/round", "loadgen CPU (peak)"], rows: out)
    }
}
