import FastPush

/// Protobuf throughput on a realistic set: the CDS, EDS, LDS and RDS resources of 100 services
/// with 10 endpoints each (what one PushContext encodes), and the decoding of what clients send
/// (an Envoy EDS ACK naming 100 clusters) and receive (the EDS response).
enum ProtoBench {
    static func run(short: Bool) throws -> [Sample] {
        let snapshot = try ServiceEntryParser.parse(Array(ScaleBench.registry(services: 100, endpoints: 10).utf8), source: "bench")
        let services = snapshot.services
        let reps = short ? 3 : 5
        // Encode: every resource of the set, wrapped in Any (what generators build once per version;
        // the assignments come from the EDS generator's own builder).
        func encodeAll() -> Int {
            var bytes = 0
            for s in services {
                let p = s.ports[0]
                let name = ResourceNames.outboundCluster(port: p.number, host: s.hostname)
                let route = ResourceNames.grpcRoute(host: s.hostname, port: p.number)
                bytes += EnvoyCluster(name: name, edsServiceName: name, connectTimeoutMillis: 10_000).encodeAny().count
                bytes += EDSGenerator.loadAssignment(name: name, service: s, port: p).encodeAny().count
                bytes += EnvoyAPIListener(name: route, connectionManager: EnvoyHttpConnectionManager(
                    statPrefix: s.hostname, routeConfigName: route)).encodeAny().count
            }
            let vhosts = services.map { s in
                EnvoyVirtualHost(name: "\(s.hostname):8080", domains: [s.hostname, "\(s.hostname):8080"],
                                 routes: [EnvoyRoute(prefix: "", cluster: ResourceNames.outboundCluster(port: 8080, host: s.hostname))])
            }
            bytes += EnvoyRouteConfiguration(name: "8080", virtualHosts: vhosts).encodeAny().count
            return bytes
        }
        let setBytes = encodeAll()
        let enc = Harness.run("proto encode (100 services: CDS+EDS+LDS+RDS, \(setBytes) B)", unit: "MB/s", reps: reps) {
            let n = short ? 20 : 50
            var total = 0
            let secs = Harness.seconds { for _ in 0..<n { total += encodeAll() } }
            return Double(total) / secs / 1e6
        }
        // Decode: an Envoy EDS ACK (100 names) with the full decoder, and with names deferred.
        var ack = DiscoveryRequest()
        ack.typeURL = EnvoyTypeURL.clusterLoadAssignment
        ack.versionInfo = "42"
        ack.responseNonce = "4242"
        ack.resourceNames = services.map { ResourceNames.outboundCluster(port: 8080, host: $0.hostname) }
        let ackBytes = ack.encode()
        let decReq = Harness.run("decode DiscoveryRequest (EDS ACK, 100 names, \(ackBytes.count) B)", unit: "MB/s", reps: reps) {
            let n = short ? 20_000 : 50_000
            let secs = Harness.seconds { for _ in 0..<n { _ = try! DiscoveryRequest(decoding: ackBytes) } }
            return Double(n * ackBytes.count) / secs / 1e6
        }
        let decDeferred = Harness.run("decode DiscoveryRequest, names deferred", unit: "MB/s", reps: reps) {
            let n = short ? 50_000 : 100_000
            let secs = Harness.seconds { for _ in 0..<n { _ = try! ackBytes.withUnsafeBytes { try DiscoveryRequest(decodingDeferringNames: $0) } } }
            return Double(n * ackBytes.count) / secs / 1e6
        }
        // The EDS response a client receives (100 assignments of 10 endpoints), decoded fully.
        let eds = services.map { s -> EncodedResource in
            let name = ResourceNames.outboundCluster(port: 8080, host: s.hostname)
            let eps = s.endpoints.map { EnvoyLbEndpoint(address: $0.address, port: 8080, healthy: true) }
            return EncodedResource(name: name, any: EnvoyClusterLoadAssignment(clusterName: name, localities: [
                EnvoyLocalityEndpoints(region: "bench", zone: "zone-0", weight: UInt32(eps.count), priority: 0, endpoints: eps)]).encodeAny())
        }
        let body = DiscoveryResponseBody.encode(typeURL: EnvoyTypeURL.clusterLoadAssignment, resources: eds)
        let resp = body.array + DiscoveryResponseTail.encode(version: "7", nonce: "9")
        let decResp = Harness.run("decode DiscoveryResponse (\(resp.count) B)", unit: "MB/s", reps: reps) {
            let n = short ? 20_000 : 50_000
            let secs = Harness.seconds { for _ in 0..<n { _ = try! DiscoveryResponse(decoding: resp) } }
            return Double(n * resp.count) / secs / 1e6
        }
        return [enc, decReq, decDeferred, decResp]
    }
}
