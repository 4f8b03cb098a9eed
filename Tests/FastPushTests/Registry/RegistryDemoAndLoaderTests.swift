#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import FastPush

@Suite struct RegistryDemoAndLoaderTests {
    @Test func demoRegistryParses() throws {
        let snap = try ServiceEntryParser.parse(json: DemoRegistry.json, source: DemoRegistry.source)
        #expect(snap.warnings.isEmpty)
        #expect(Set(snap.services.map(\.namespace)).count >= 2)
        #expect(snap == DemoRegistry.snapshot())

        let echo = try #require(snap.service(namespace: "demo", hostname: "echo.demo.svc.cluster.local"))
        let port = try #require(echo.ports.first)
        #expect(port.number == 8080 && port.protocolName == "GRPC")
        #expect(echo.endpoints.map { $0.address } == ["127.0.0.1", "127.0.0.1"])
        #expect(echo.endpoints.map { $0.port(for: port) } == [15051, 15052])
        #expect(Set(echo.endpoints.map(\.locality)).count == 2)

        #expect(snap.services.contains { $0.exportTo == .namespaces([], includesOwn: true) })
        #expect(snap.services.contains { $0.ports.count == 2 && $0.ports.allSatisfy { $0.targetPort != nil } })
    }

    @Test func loadsAFile() throws {
        let dir = TempDir()
        defer { dir.removeAll() }
        dir.write("registry.json", DemoRegistry.json)
        #expect(try RegistryLoader.load(path: dir.file("registry.json")) == DemoRegistry.snapshot())
    }

    @Test func missingFileIsARegistryError() throws {
        let dir = TempDir()
        defer { dir.removeAll() }
        let path = dir.file("nope.json")
        let e = #expect(throws: RegistryError.self) { try RegistryLoader.load(path: path) }
        #expect(e?.kind == .unreadable)
        #expect(e?.description == "\(path): cannot open: No such file or directory")
    }

    @Test func directoryIsARegistryError() throws {
        let dir = TempDir()
        defer { dir.removeAll() }
        let e = #expect(throws: RegistryError.self) { try RegistryLoader.load(path: dir.path) }
        #expect(e?.kind == .unreadable)
        #expect(e?.description.hasPrefix(dir.path) == true)
    }

    @Test(.enabled(if: geteuid() != 0, "root reads any file"))
    func unreadableFileIsARegistryError() throws {
        let dir = TempDir()
        defer { dir.removeAll() }
        dir.write("r.json", "[]")
        chmod(dir.file("r.json"), 0)
        let e = #expect(throws: RegistryError.self) { try RegistryLoader.load(path: dir.file("r.json")) }
        #expect(e?.description.contains("Permission denied") == true)
    }

    @Test func invalidFileErrorsNameThePath() throws {
        let dir = TempDir()
        defer { dir.removeAll() }
        dir.write("bad.json", "{")
        let e = #expect(throws: RegistryError.self) { try RegistryLoader.load(path: dir.file("bad.json")) }
        #expect(e?.kind == .malformedJSON)
        #expect(e?.description.hasPrefix("\(dir.file("bad.json")): line 1, column 2: malformed JSON") == true)
    }
}
