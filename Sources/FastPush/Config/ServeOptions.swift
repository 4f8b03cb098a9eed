#if canImport(Glibc)
import Glibc
#endif

/// Everything `fastpilot serve` can be told, from flags first, then Istio's env names.
public struct ServeOptions: Sendable, Equatable {
    public var xdsHost = "0.0.0.0"
    public var xdsPort: UInt16 = 15010
    public var adminHost = "127.0.0.1"
    public var adminPort: UInt16 = 15014
    public var registryPath: String?
    /// `etcd://HOST:PORT[,...]`: the registry lives in etcd instead of a file.
    public var storeURL: String?
    public var storePrefix = "/fastpilot/"
    /// Istio's MaxServerConnectionAge (0: off) and the grace after its GOAWAY.
    public var maxConnectionAgeNanos: UInt64 = 0
    public var maxConnectionAgeGraceNanos: UInt64 = 10_000_000_000
    public var pushTrace = DiscoveryServerConfig().pushTrace
    public var pushTraceCapacity = DiscoveryServerConfig().pushTraceCapacity
    public var ioThreads = System.coreCount
    public var io = IOBackend.auto
    // Defaults come from the types that own them, so that each lives in one place.
    public var pushWorkers = DiscoveryServerConfig().pushWorkers
    public var pushThrottle = DiscoveryServerConfig().pushThrottle
    public var debounceAfter = DebounceOptions().after
    public var debounceMax = DebounceOptions().max
    public var enableEDSDebounce = DebounceOptions().enableEDSDebounce
    public var maxStreams = DiscoveryServerConfig().maxStreams
    /// By default the descriptor limit less a reserve for listeners, the registry and loops.
    public var maxConnections = ServeOptions.descriptorBudget()
    public var sendTimeoutNanos = GRPCServerConfig().sendTimeoutNanos
    public var drainNanos: UInt64 = 10_000_000_000
    public var adminTokenFile: String?
    public var maxConcurrentStreams = H2Settings().maxConcurrentStreams
    public var maxRecvMsgSize = GRPCServerConnection.defaultMaxMessageSize
    public var socketSendBuffer = GRPCServerConfig().socketSendBuffer
    public var defaultNamespace = DiscoveryServerConfig().defaultNamespace
    public var logLevel = Log.Level.info
    /// mTLS xDS listener (istiod's 15012): on when a certificate and key are given.
    public var xdsTLSHost = "0.0.0.0"
    public var xdsTLSPort: UInt16 = 15012
    public var tlsCertPath: String?
    public var tlsKeyPath: String?
    /// Client certificates are required and verified against these CAs.
    public var tlsClientCAPath: String?
    /// The plaintext listener (15010); `--xds-plaintext=false` leaves only TLS.
    public var xdsPlaintext = true
    /// A TLS handshake not done within this is closed.
    public var tlsHandshakeTimeoutNanos: UInt64 = 10_000_000_000
    /// How often the certificate, key and CA files are checked for a rotation.
    public var tlsWatchIntervalNanos: UInt64 = 1_000_000_000

    public var tlsEnabled: Bool { tlsCertPath != nil }

    public init() {}

    public struct Flag: Sendable {
        public let name: String
        public let value: String
        public let env: String?
        public let help: String
    }

    /// The flags, as `--help` lists them.
    public static let flags: [Flag] = [
        Flag(name: "--xds-address", value: "HOST:PORT", env: nil, help: "xDS (gRPC h2c) listen address (default 0.0.0.0:15010)"),
        Flag(name: "--xds-port", value: "PORT", env: nil, help: "xDS port only; 0 picks a free port"),
        Flag(name: "--xds-tls-address", value: "HOST:PORT", env: nil, help: "xDS over TLS (gRPC h2, ALPN h2) listen address, with --tls-cert and --tls-key (default 0.0.0.0:15012)"),
        Flag(name: "--tls-cert", value: "FILE", env: nil, help: "PEM certificate chain of the TLS listener; watched, new handshakes use a new one"),
        Flag(name: "--tls-key", value: "FILE", env: nil, help: "PEM private key of --tls-cert; watched with it"),
        Flag(name: "--tls-client-ca", value: "FILE", env: nil, help: "PEM CAs: clients must present a certificate they signed; a SPIFFE URI SAN sets the proxy's namespace"),
        Flag(name: "--xds-plaintext", value: "BOOL", env: nil, help: "keep serving plaintext xDS on --xds-address (default true)"),
        Flag(name: "--tls-handshake-timeout", value: "DURATION", env: nil, help: "close a TLS connection whose handshake is not done after this long (default 10s)"),
        Flag(name: "--tls-watch-interval", value: "DURATION", env: nil, help: "how often the certificate, key and CA files are checked for a rotation (default 1s)"),
        Flag(name: "--admin-address", value: "HOST:PORT", env: nil, help: "admin and monitoring HTTP address (default 127.0.0.1:15014)"),
        Flag(name: "--admin-port", value: "PORT", env: nil, help: "admin port only; 0 picks a free port"),
        Flag(name: "--registry", value: "FILE", env: nil, help: "ServiceEntry JSON (kubectl get serviceentries -A -o json), watched; default: the embedded demo registry"),
        Flag(name: "--store", value: "etcd://HOST:PORT[,...]", env: nil, help: "keep the registry in etcd (one key per ServiceEntry), shared by replicas; instead of --registry"),
        Flag(name: "--store-prefix", value: "PREFIX", env: nil, help: "etcd key prefix (default /fastpilot/): keys are PREFIXserviceentries/NS/NAME"),
        Flag(name: "--max-connection-age", value: "DURATION", env: nil, help: "GOAWAY each xDS connection after this age, +-10%, so clients spread over replicas again (default off)"),
        Flag(name: "--max-connection-age-grace", value: "DURATION", env: nil, help: "after that GOAWAY, close a connection still open after this long (default 10s)"),
        Flag(name: "--io-threads", value: "N", env: nil, help: "I/O event loops (default: one per core)"),
        Flag(name: "--io", value: "auto|uring|epoll", env: IOBackend.environmentName, help: "I/O backend; auto: io_uring, or epoll where io_uring cannot be set up (seccomp) (default auto)"),
        Flag(name: "--push-workers", value: "N", env: nil, help: "threads that generate pushes (default: one per core)"),
        Flag(name: "--push-throttle", value: "N", env: "PILOT_PUSH_THROTTLE", help: "pushes in flight at once (default min(15 + 5 x cores, 100))"),
        Flag(name: "--debounce-after", value: "DURATION", env: "PILOT_DEBOUNCE_AFTER", help: "quiet period before a push (default 100ms)"),
        Flag(name: "--debounce-max", value: "DURATION", env: "PILOT_DEBOUNCE_MAX", help: "longest a change waits for quiet (default 10s)"),
        Flag(name: "--eds-debounce", value: "BOOL", env: "PILOT_ENABLE_EDS_DEBOUNCE", help: "debounce endpoint-only changes too (default true)"),
        Flag(name: "--push-trace", value: "BOOL", env: nil, help: "record every push's timeline, to the clients' ACKs (/debug/pushz) (default true)"),
        Flag(name: "--push-trace-pushes", value: "N", env: nil, help: "recent pushes /debug/pushz keeps (default 64)"),
        Flag(name: "--max-streams", value: "N", env: nil, help: "ADS streams at once, all connections (default 131072)"),
        Flag(name: "--max-connections", value: "N", env: nil, help: "TCP connections at once (default: the descriptor limit less 128)"),
        Flag(name: "--send-timeout", value: "DURATION", env: nil, help: "close a client whose pending bytes move none for this long (default 30s; 0: never)"),
        Flag(name: "--drain-duration", value: "DURATION", env: nil, help: "on SIGTERM, how long in-flight pushes may take before exit (default 10s)"),
        Flag(name: "--admin-token-file", value: "FILE", env: nil, help: "require 'Authorization: Bearer <token>' (the file's content) on admin writes"),
        Flag(name: "--max-concurrent-streams", value: "N", env: "ISTIO_GPRC_MAXSTREAMS", help: "HTTP/2 streams per connection (default 4096)"),
        Flag(name: "--max-recv-msg-size", value: "BYTES", env: "ISTIO_GPRC_MAXRECVMSGSIZE", help: "largest request message (default 4194304)"),
        Flag(name: "--socket-send-buffer", value: "BYTES", env: nil, help: "SO_SNDBUF per client socket (default 262144)"),
        Flag(name: "--default-namespace", value: "NAME", env: nil, help: "namespace of proxies whose node names none (default \"default\")"),
        Flag(name: "--log-level", value: "LEVEL", env: nil, help: "debug, info, warn or error (default info)"),
    ]

    public static var help: String {
        var s = "Usage: fastpilot serve [flags]\n\nServes xDS (ADS: State of the World and Delta) from a ServiceEntry registry: a file, etcd, or the embedded demo.\n\nFlags:\n"
        for f in flags {
            let left = "  \(f.name) \(f.value)"
            s += left.padding(toLength: max(left.count + 2, 36)) + f.help
            if let e = f.env { s += " [env \(e)]" }
            s += "\n"
        }
        s += "  --help".padding(toLength: 36) + "this text\n"
        return s
    }

    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    /// Env first, then flags over it.
    public static func parse(_ args: [String], env: [String: String] = [:]) throws(ParseError) -> ServeOptions {
        var o = ServeOptions()
        var values: [String: String] = [:]
        for f in flags {
            if let e = f.env, let v = env[e], !v.isEmpty { values[f.name] = v }
        }
        var i = 0
        while i < args.count {
            var arg = args[i]
            var value: String?
            if let eq = arg.firstIndex(of: "="), arg.hasPrefix("--") {
                value = String(arg[arg.index(after: eq)...])
                arg = String(arg[..<eq])
            }
            guard flags.contains(where: { $0.name == arg }) else {
                throw ParseError(description: "unknown flag \(arg) (see fastpilot serve --help)")
            }
            if value == nil {
                i += 1
                guard i < args.count else { throw ParseError(description: "flag \(arg) needs a value") }
                value = args[i]
            }
            values[arg] = value
            i += 1
        }
        for (name, v) in values.sorted(by: { $0.key < $1.key }) {
            try o.apply(name, v)
        }
        if o.storeURL != nil && o.registryPath != nil {
            throw ParseError(description: "--store and --registry are two registries; give one")
        }
        if (o.tlsCertPath == nil) != (o.tlsKeyPath == nil) {
            throw ParseError(description: "--tls-cert and --tls-key go together")
        }
        if o.tlsClientCAPath != nil && o.tlsCertPath == nil {
            throw ParseError(description: "--tls-client-ca needs --tls-cert and --tls-key (it verifies clients of the TLS listener)")
        }
        if values["--xds-tls-address"] != nil && o.tlsCertPath == nil {
            throw ParseError(description: "--xds-tls-address needs --tls-cert and --tls-key")
        }
        if !o.xdsPlaintext && o.tlsCertPath == nil {
            throw ParseError(description: "--xds-plaintext=false leaves no xDS listener without --tls-cert and --tls-key")
        }
        return o
    }

    mutating func apply(_ name: String, _ v: String) throws(ParseError) {
        func int(_ min: Int, _ max: Int = Int.max) throws(ParseError) -> Int {
            guard let n = Int(v), n >= min, n <= max else {
                throw ParseError(description: "\(name): expected an integer in \(min)...\(max), got \"\(v)\"")
            }
            return n
        }
        func address() throws(ParseError) -> (String, UInt16) {
            guard let a = Socket.parseHostPort(v) else { throw ParseError(description: "\(name): expected HOST:PORT, got \"\(v)\"") }
            return a
        }
        func duration() throws(ParseError) -> UInt64 {
            guard let d = DurationText.nanos(v) else { throw ParseError(description: "\(name): expected a duration such as 100ms or 10s, got \"\(v)\"") }
            return d
        }
        switch name {
        case "--xds-address": (xdsHost, xdsPort) = try address()
        case "--xds-port": xdsPort = UInt16(try int(0, 65535))
        case "--xds-tls-address": (xdsTLSHost, xdsTLSPort) = try address()
        case "--tls-cert": tlsCertPath = v
        case "--tls-key": tlsKeyPath = v
        case "--tls-client-ca": tlsClientCAPath = v
        case "--xds-plaintext":
            switch v.lowercased() {
            case "true", "1", "yes": xdsPlaintext = true
            case "false", "0", "no": xdsPlaintext = false
            default: throw ParseError(description: "\(name): expected true or false, got \"\(v)\"")
            }
        case "--tls-handshake-timeout": tlsHandshakeTimeoutNanos = try duration()
        case "--tls-watch-interval": tlsWatchIntervalNanos = max(1_000_000, try duration())
        case "--admin-address": (adminHost, adminPort) = try address()
        case "--admin-port": adminPort = UInt16(try int(0, 65535))
        case "--registry": registryPath = v
        case "--store":
            guard v.hasPrefix("etcd://"), EtcdClient.Endpoint.parse(v) != nil else {
                throw ParseError(description: "\(name): expected etcd://HOST:PORT[,HOST:PORT...], got \"\(v)\"")
            }
            storeURL = v
        case "--store-prefix":
            guard !v.isEmpty else { throw ParseError(description: "\(name): must not be empty") }
            storePrefix = v
        case "--max-connection-age": maxConnectionAgeNanos = try duration()
        case "--max-connection-age-grace": maxConnectionAgeGraceNanos = try duration()
        case "--io-threads": ioThreads = try int(1, 256)
        case "--io":
            guard let b = IOBackend(name: v) else { throw ParseError(description: "\(name): expected auto, uring or epoll, got \"\(v)\"") }
            io = b
        case "--push-workers": pushWorkers = try int(1, 256)
        case "--push-throttle":
            let n = try int(0, 100_000)
            pushThrottle = n == 0 ? PushDispatcher<XdsConnection>.defaultThrottle(cores: System.coreCount) : n
        case "--debounce-after": debounceAfter = try duration()
        case "--debounce-max": debounceMax = try duration()
        case "--eds-debounce":
            switch v.lowercased() {
            case "true", "1", "yes": enableEDSDebounce = true
            case "false", "0", "no": enableEDSDebounce = false
            default: throw ParseError(description: "\(name): expected true or false, got \"\(v)\"")
            }
        case "--push-trace":
            switch v.lowercased() {
            case "true", "1", "yes": pushTrace = true
            case "false", "0", "no": pushTrace = false
            default: throw ParseError(description: "\(name): expected true or false, got \"\(v)\"")
            }
        case "--push-trace-pushes": pushTraceCapacity = try int(2, 4096)
        case "--max-streams": maxStreams = try int(1, 1 << 24)
        case "--max-connections": maxConnections = try int(1, 1 << 24)
        case "--max-concurrent-streams": maxConcurrentStreams = UInt32(try int(1, 1 << 30))
        case "--max-recv-msg-size": maxRecvMsgSize = try int(1024, 1 << 30)
        case "--socket-send-buffer": socketSendBuffer = Int32(try int(4096, 1 << 30))
        case "--send-timeout": sendTimeoutNanos = try duration()
        case "--drain-duration": drainNanos = try duration()
        case "--admin-token-file": adminTokenFile = v
        case "--default-namespace": defaultNamespace = v
        case "--log-level":
            switch v.lowercased() {
            case "debug": logLevel = .debug
            case "info": logLevel = .info
            case "warn", "warning": logLevel = .warn
            case "error": logLevel = .error
            default: throw ParseError(description: "\(name): expected debug, info, warn or error, got \"\(v)\"")
            }
        default: break
        }
    }
}

extension ServeOptions {
    /// RLIMIT_NOFILE (raised to its hard limit) less 128.
    public static func descriptorBudget() -> Int {
        var lim = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &lim)
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max
            setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &lim)
        }
        return max(16, Int(min(lim.rlim_cur, 1 << 24)) - 128)
    }
}

extension String {
    func padding(toLength n: Int) -> String {
        count >= n ? self + " " : self + String(repeating: " ", count: n - count)
    }
}
