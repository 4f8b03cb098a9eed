import Foundation
import Testing
@testable import FastPush

/// Rough encode/decode throughput, printed for a human (meaningful with `-c release`); the
/// assertions check that repeated encodes stay exact and byte-identical.
@Suite struct ProtoThroughputTests {
    static func bigCLA(endpoints: Int) -> EnvoyClusterLoadAssignment {
        let zones = ["zone-a", "zone-b", "zone-c", "zone-d"]
        return EnvoyClusterLoadAssignment(
            clusterName: "outbound|8080||echo.default.svc.cluster.local",
            localities: zones.enumerated().map { z, zone in
                EnvoyLocalityEndpoints(region: "us-east1", zone: zone, weight: UInt32(endpoints / zones.count), priority: 0,
                    endpoints: (0..<endpoints / zones.count).map { i in
                        EnvoyLbEndpoint(address: "10.\(z).\(i / 250).\(i % 250)", port: 8080, healthStatus: .healthy, weight: 1)
                    })
            })
    }

    static func seconds(_ body: () -> Void) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    @Test func encodeAndDecodeThroughput() throws {
        let cla = Self.bigCLA(endpoints: 2_000)
        let reference = cla.encodeAny()
        // FASTPUSH_PROTO_BENCH_SCALE multiplies the loop counts, for profiling.
        let scale = Int(ProcessInfo.processInfo.environment["FASTPUSH_PROTO_BENCH_SCALE"] ?? "") ?? 1
        let iterations = 200 * scale
        var total = 0
        var same = true
        let encodeTime = Self.seconds {
            for _ in 0..<iterations {
                let b = cla.encodeAny()
                total += b.count
                same = same && b.count == reference.count && memcmp(b.base, reference.base, b.count) == 0
            }
        }
        #expect(same)
        #expect(total == reference.count * iterations)

        let req = Reference.discoveryRequest.encode()
        var decoded = 0
        let decodeTime = Self.seconds {
            for _ in 0..<20_000 * scale {
                if let r = try? DiscoveryRequest(decoding: req), r.node != nil { decoded += 1 }
            }
        }
        #expect(decoded == 20_000 * scale)
        print(String(format: "proto throughput: CLA(2000 endpoints, %d bytes) encode %.0f MB/s; DiscoveryRequest(%d bytes) decode %.0f MB/s, %.1f µs each",
                     reference.count, Double(total) / encodeTime / 1e6, req.count,
                     Double(req.count * 20_000 * scale) / decodeTime / 1e6, decodeTime / Double(20_000 * scale) * 1e6))
    }
}
