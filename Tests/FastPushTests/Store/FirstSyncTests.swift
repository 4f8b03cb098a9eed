import Testing
@testable import FastPush

/// A store's first sync admits ADS streams; the PushContext they are answered from must be the
/// synced registry's, not the empty one the debouncer would replace a moment later.
@Suite struct FirstSyncTests {
    @Test func anImmediateUpdatePublishesBeforeItReturnsADebouncedOneDoesNot() {
        var config = DiscoveryServerConfig()
        config.debounce.after = 10_000_000_000  // far longer than the test: only `immediate` can publish
        config.debounce.max = 20_000_000_000
        let server = DiscoveryServer(config: config, registry: RegistrySnapshot(services: []))
        server.start()
        defer { server.stop() }
        let before = server.pushContext.version

        server.updateRegistry(RegistrySnapshot(services: [Fixtures.echo]))
        #expect(server.pushContext.version == before, "a debounced update published at once")
        #expect(server.pushContext.registry.count == 0)

        server.updateRegistry(RegistrySnapshot(services: [Fixtures.echo, Fixtures.ledger]), immediate: true)
        #expect(server.pushContext.version > before)
        #expect(server.pushContext.registry.count == 2)
    }
}
