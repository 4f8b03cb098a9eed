import Testing
@testable import FastPush

@Suite struct TLSOptionsTests {
    @Test func certificatesTurnTheTLSListenerOn() throws {
        let o = try ServeOptions.parse(["--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-client-ca", "ca.pem",
                                        "--xds-tls-address", "127.0.0.1:0", "--xds-plaintext=false", "--tls-handshake-timeout", "3s"])
        #expect(o.tlsEnabled)
        #expect(o.xdsTLSHost == "127.0.0.1" && o.xdsTLSPort == 0)
        #expect(o.tlsClientCAPath == "ca.pem")
        #expect(!o.xdsPlaintext)
        #expect(o.tlsHandshakeTimeoutNanos == 3_000_000_000)
        let d = try ServeOptions.parse(["--tls-cert", "c.pem", "--tls-key", "k.pem"])
        #expect(d.xdsTLSPort == 15012, "istiod's port by default")
        #expect(d.xdsPlaintext, "the plaintext listener stays unless turned off")
        #expect(try !ServeOptions.parse([]).tlsEnabled)
    }

    @Test(arguments: [
        ["--tls-cert", "c.pem"],
        ["--tls-key", "k.pem"],
        ["--tls-client-ca", "ca.pem"],
        ["--xds-plaintext=false"],
        ["--xds-tls-address", "127.0.0.1:15012"],
        ["--tls-cert", "c.pem", "--tls-key", "k.pem", "--xds-plaintext", "maybe"],
    ])
    func incompleteOrContradictoryFlagsAreRefused(_ args: [String]) {
        #expect(throws: ServeOptions.ParseError.self) { try ServeOptions.parse(args) }
    }
}
