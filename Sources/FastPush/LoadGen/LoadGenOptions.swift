/// `fastpilot loadgen` flags.
public struct LoadGenOptions: Sendable {
    public enum Trigger: String, Sendable { case endpoint, full }

    public var targetHost = "127.0.0.1"
    public var targetPort: UInt16 = 15010
    public var adminHost = "127.0.0.1"
    public var adminPort: UInt16 = 15014
    public var streams = 1000
    public var conns: Int?
    public var mode = ADSClientStream.Mode.envoy
    /// StreamAggregatedResources (State of the World) or DeltaAggregatedResources.
    public var xdsProtocol = XdsProtocol.sotw
    /// After the rounds: drop every connection and connect again with what each stream holds.
    public var reconnect = false
    /// Runs between the drop and the reconnect (e.g. restart the server).
    public var reconnectCommand: String?
    public var grpcTargets: [String] = []
    public var namespaces = ["default"]
    public var nodePrefix = "loadgen"
    public var rounds = 3
    public var triggers: [Trigger] = [.endpoint, .full]
    /// `namespace/name` of the ServiceEntry an endpoint trigger changes (default: the first).
    public var triggerService: String?
    /// A full change's new service gets a port no other service uses (else 8080).
    public var fullNewPort = false
    /// Runs instead of the admin API for each trigger (for other servers); `{round}` and
    /// `{kind}` are replaced.
    public var triggerCommand: String?
    /// Cluster names whose watchers must converge on an endpoint trigger (with --trigger-cmd).
    public var expectClusters: [String] = []
    public var timeoutNanos: UInt64 = 60_000_000_000
    public var settleNanos: UInt64 = 500_000_000
    /// After the phases, keep every stream open (ACKing what arrives) this long.
    public var holdNanos: UInt64 = 0
    public var jsonPath: String?
    public var svgPath: String?
    public var serverPID: Int32?
    public var sourceAddresses: [String] = []
    /// TLS to the target: trust these CAs; present this certificate and key (optional).
    public var tlsCA: String?
    public var tlsCert: String?
    public var tlsKey: String?
    /// The name the server's certificate is checked against (default: the target host).
    public var tlsServerName: String?
    public var ioThreads = System.coreCount
    public var io = IOBackend.auto
    public var progress = true

    public init() {}

    public var connections: Int { min(conns ?? streams, streams) }

    public static let help = """
        Usage: fastpilot loadgen [flags]

        Simulated ADS clients (State of the World or Delta) against any ADS server, with push
        latency measured from a trigger to each stream's receipt of the new version.

        Flags:
          --target HOST:PORT           ADS server (default 127.0.0.1:15010)
          --admin HOST:PORT            fastpilot admin API, for triggers (default 127.0.0.1:15014)
          --streams N                  ADS streams (default 1000)
          --conns K                    TCP connections, streams spread over them (default: one per stream)
          --mode envoy|grpc            envoy: wildcard CDS, EDS, wildcard LDS, RDS; grpc: LDS by name, RDS, CDS, EDS
          --protocol sotw|delta        StreamAggregatedResources (default) or DeltaAggregatedResources (envoy
                                       mode: Envoy's delta flow, ACKs by nonce, the node in every request)
          --reconnect                  after the rounds, drop every connection and reconnect; Delta streams send
                                       initial_resource_versions for what they hold (phase "reconnect")
          --reconnect-cmd CMD          run CMD (sh -c) between the drop and the reconnect (e.g. restart the server)
          --grpc-target HOST:PORT      listener name for grpc mode (repeat or comma-separate; streams round-robin)
          --namespaces A,B             node namespaces, round-robin over streams (default default)
          --node-prefix NAME           node id prefix (default loadgen)
          --rounds R                   rounds of each trigger (default 3)
          --trigger LIST               endpoint, full, or both (default endpoint,full); none: sync only
          --trigger-service NS/NAME    ServiceEntry an endpoint trigger changes (default: the first)
          --full-new-port              a full change adds its service on a port of its own (default: port 8080,
                                       so the route configuration of port 8080 changes for every client)
          --trigger-cmd CMD            run CMD (sh -c) instead of the admin API; {round} and {kind} are replaced
          --expect-cluster NAME        with --trigger-cmd: streams watching NAME must converge (repeatable)
          --timeout DURATION           per phase (default 60s); exit 1 if a stream has not converged
          --settle DURATION            pause before each trigger (default 500ms)
          --hold DURATION              then keep the streams open, ACKing pushes (soak tests); a
                                       stream that ends meanwhile counts as a failure
          --json FILE                  write the report as JSON
          --svg FILE                   write the latency distributions as SVG
          --server-pid PID             report the server's RSS and CPU seconds from /proc
          --source-addresses A-B       spread connections over source IPs, e.g. 127.0.0.2-127.0.0.9
          --tls-ca FILE                speak TLS to --target, trusting these CAs (fastpilot's --xds-tls-address)
          --tls-cert FILE, --tls-key FILE   the client certificate presented (for --tls-client-ca)
          --tls-server-name NAME       the name the server certificate must carry (default: the target host)
                                       (default: 127.0.0.1, or that range beyond 2000 connections)
          --io-threads N               client I/O loops (default: one per core)
          --io auto|uring|epoll        I/O backend; auto: io_uring, or epoll where io_uring cannot be
                                       set up (default auto, or $FASTPILOT_IO)
          --no-progress                no progress line on the terminal

        """

    public struct ParseError: Error, CustomStringConvertible {
        public let description: String
    }

    public static func parse(_ args: [String]) throws(ParseError) -> LoadGenOptions {
        var o = LoadGenOptions()
        var i = 0
        func value(_ name: String) throws(ParseError) -> String {
            i += 1
            guard i < args.count else { throw ParseError(description: "\(name) needs a value") }
            return args[i]
        }
        func int(_ name: String, _ v: String, min: Int = 1) throws(ParseError) -> Int {
            guard let n = Int(v), n >= min else { throw ParseError(description: "\(name): expected an integer ≥ \(min), got \"\(v)\"") }
            return n
        }
        func hostPort(_ name: String, _ v: String) throws(ParseError) -> (String, UInt16) {
            guard let hp = Socket.parseHostPort(v) else { throw ParseError(description: "\(name): expected HOST:PORT, got \"\(v)\"") }
            return hp
        }
        func duration(_ name: String, _ v: String) throws(ParseError) -> UInt64 {
            guard let d = DurationText.nanos(v) else { throw ParseError(description: "\(name): expected a duration such as 500ms, got \"\(v)\"") }
            return d
        }
        var mode = "envoy"
        while i < args.count {
            let a = args[i]
            switch a {
            case "--target": (o.targetHost, o.targetPort) = try hostPort(a, try value(a))
            case "--admin": (o.adminHost, o.adminPort) = try hostPort(a, try value(a))
            case "--streams": o.streams = try int(a, try value(a))
            case "--conns": o.conns = try int(a, try value(a))
            case "--mode": mode = try value(a)
            case "--protocol":
                let v = try value(a)
                guard let p = XdsProtocol(rawValue: v) else { throw ParseError(description: "--protocol: sotw or delta, got \"\(v)\"") }
                o.xdsProtocol = p
            case "--reconnect": o.reconnect = true
            case "--reconnect-cmd": o.reconnectCommand = try value(a); o.reconnect = true
            case "--grpc-target": o.grpcTargets += try value(a).split(separator: ",").map(String.init)
            case "--namespaces", "--namespace": o.namespaces = try value(a).split(separator: ",").map(String.init)
            case "--node-prefix": o.nodePrefix = try value(a)
            case "--rounds": o.rounds = try int(a, try value(a), min: 0)
            case "--trigger":
                let v = try value(a)
                if v == "none" { o.triggers = [] } else {
                    o.triggers = []
                    for t in v.split(separator: ",") {
                        guard let k = Trigger(rawValue: String(t)) else { throw ParseError(description: "--trigger: endpoint, full or none, got \"\(t)\"") }
                        o.triggers.append(k)
                    }
                }
            case "--trigger-service": o.triggerService = try value(a)
            case "--full-new-port": o.fullNewPort = true
            case "--trigger-cmd": o.triggerCommand = try value(a)
            case "--expect-cluster": o.expectClusters.append(try value(a))
            case "--timeout": o.timeoutNanos = try duration(a, try value(a))
            case "--settle": o.settleNanos = try duration(a, try value(a))
            case "--hold": o.holdNanos = try duration(a, try value(a))
            case "--json": o.jsonPath = try value(a)
            case "--svg": o.svgPath = try value(a)
            case "--server-pid": o.serverPID = Int32(try int(a, try value(a)))
            case "--source-addresses": o.sourceAddresses = try Self.addressRange(try value(a))
            case "--tls-ca": o.tlsCA = try value(a)
            case "--tls-cert": o.tlsCert = try value(a)
            case "--tls-key": o.tlsKey = try value(a)
            case "--tls-server-name": o.tlsServerName = try value(a)
            case "--io-threads": o.ioThreads = try int(a, try value(a))
            case "--io":
                let v = try value(a)
                guard let b = IOBackend(name: v) else { throw ParseError(description: "--io: expected auto, uring or epoll, got \"\(v)\"") }
                o.io = b
            case "--no-progress": o.progress = false
            default: throw ParseError(description: "unknown flag \(a) (see fastpilot loadgen --help)")
            }
            i += 1
        }
        switch mode {
        case "envoy": o.mode = .envoy
        case "grpc":
            guard !o.grpcTargets.isEmpty else { throw ParseError(description: "--mode grpc needs --grpc-target HOST:PORT") }
            o.mode = .grpc(target: o.grpcTargets[0])
            if o.triggers.contains(.full) {
                throw ParseError(description: "--trigger full needs wildcard subscriptions (--mode envoy); use --trigger endpoint with --mode grpc")
            }
        default: throw ParseError(description: "--mode: envoy or grpc, got \"\(mode)\"")
        }
        if o.xdsProtocol == .delta, case .grpc = o.mode {
            throw ParseError(description: "--protocol delta simulates Envoy (--mode envoy); gRPC's xDS client speaks State of the World")
        }
        if o.reconnect && o.xdsProtocol != .delta {
            throw ParseError(description: "--reconnect needs --protocol delta (a State of the World reconnect is an initial sync)")
        }
        if let c = o.conns, c > o.streams { throw ParseError(description: "--conns \(c) exceeds --streams \(o.streams)") }
        if o.sourceAddresses.isEmpty {
            o.sourceAddresses = o.connections > 2000 ? try Self.addressRange("127.0.0.2-127.0.0.9") : []
        }
        return o
    }

    /// "127.0.0.2-127.0.0.9" or "a,b,c".
    static func addressRange(_ s: String) throws(ParseError) -> [String] {
        if s.contains(",") { return s.split(separator: ",").map(String.init) }
        let ends = s.split(separator: "-")
        guard ends.count == 2 else { return [s] }
        let a = ends[0].split(separator: "."), b = ends[1].split(separator: ".")
        guard a.count == 4, b.count == 4, a[0..<3] == b[0..<3], let lo = Int(a[3]), let hi = Int(b[3]), lo <= hi else {
            throw ParseError(description: "--source-addresses: expected A.B.C.X-A.B.C.Y, got \"\(s)\"")
        }
        return (lo...hi).map { "\(a[0]).\(a[1]).\(a[2]).\($0)" }
    }
}
