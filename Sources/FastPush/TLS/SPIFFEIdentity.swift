/// A workload identity from a certificate's URI SAN: `spiffe://TRUST_DOMAIN/ns/NS/sa/SA`, the
/// form Istio issues. Parsed strictly: anything else is not an identity (no guessing from
/// other shapes, no percent-decoding).
public struct SPIFFEIdentity: Sendable, Equatable, CustomStringConvertible {
    public let trustDomain: String
    public let namespace: String
    public let serviceAccount: String

    public init?(uri: String) {
        let prefix = "spiffe://"
        guard uri.hasPrefix(prefix) else { return nil }
        let parts = uri.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[1] == "ns", parts[3] == "sa" else { return nil }
        let domain = parts[0], ns = parts[2], sa = parts[4]
        guard !domain.isEmpty, !ns.isEmpty, !sa.isEmpty else { return nil }
        // DNS-label-ish characters only: a percent sign, a query or a fragment is refused, not decoded.
        func plain(_ s: Substring, extra: Set<Character>) -> Bool {
            s.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "-" || extra.contains($0) }
        }
        guard plain(domain, extra: [".", "_"]), plain(ns, extra: []), plain(sa, extra: [".", "_"]) else { return nil }
        trustDomain = String(domain).lowercased()
        namespace = String(ns)
        serviceAccount = String(sa)
    }

    public var description: String { "spiffe://\(trustDomain)/ns/\(namespace)/sa/\(serviceAccount)" }
}
