import Foundation
@testable import FastPush

/// Certificates made once per test run by Tests/tls/make-test-certs.sh (Debian's openssl): a
/// CA with a server certificate and client certificates, and a second, unrelated CA.
enum TestCertificates {
    struct Set: Sendable {
        let dir: String
        var ca: String { dir + "/ca.crt" }
        var serverCert: String { dir + "/server.crt" }
        var serverKey: String { dir + "/server.key" }
        func cert(_ name: String) -> String { dir + "/\(name).crt" }
        func key(_ name: String) -> String { dir + "/\(name).key" }
    }

    static let echoURI = "spiffe://cluster.local/ns/default/sa/echo"
    static let otherURI = "spiffe://cluster.local/ns/other/sa/worker"

    /// The project's CA: clients `echo` (namespace default), `other` (namespace other) and
    /// `plain` (a URI that is not SPIFFE).
    static let main: Set = make("main", ["echo=\(echoURI)", "other=\(otherURI)", "plain=https://example.com/x"])
    /// An unrelated CA with a client `echo` of the same SPIFFE identity.
    static let foreign: Set = make("foreign", ["echo=\(echoURI)"])

    private static func make(_ name: String, _ clients: [String]) -> Set {
        let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        let dir = NSTemporaryDirectory() + "fastpilot-tls-\(getpid())-\(name)"
        // posix_spawn, not Foundation's Process (whose weak side table LeakSanitizer reports).
        let argv = ["/bin/bash", tests + "/tls/make-test-certs.sh", dir] + clients
        var cargs = argv.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        var pid: pid_t = 0
        precondition(posix_spawn(&pid, argv[0], &actions, nil, &cargs, environ) == 0, "cannot run make-test-certs.sh")
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        precondition(status == 0, "make-test-certs.sh failed (\(status))")
        return Set(dir: dir)
    }

    static func server(_ set: Set = main, clientCA: String? = main.ca) throws -> TLSContext {
        try TLSContext(.init(role: .server, certificatePath: set.serverCert, keyPath: set.serverKey, trustPath: clientCA))
    }

    static func client(_ name: String?, from set: Set = main, trust: String = main.ca, maxTLS12: Bool = false) throws -> TLSContext {
        var c = TLSContext.Configuration(role: .client, certificatePath: name.map(set.cert), keyPath: name.map(set.key),
                                         trustPath: trust, serverName: "localhost")
        c.maxTLS12 = maxTLS12
        return try TLSContext(c)
    }
}
