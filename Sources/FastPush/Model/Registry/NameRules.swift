#if canImport(Glibc)
import Glibc
#endif

/// The name checks Istio's validation applies to ServiceEntry fields. Each returns nil when
/// the value is fine, else a message for the error line.
enum NameRules {
    /// Kubernetes DNS-1123 label: namespace names, port names, `exportTo` namespaces.
    static func dns1123Label(_ s: String) -> String? {
        if s.isEmpty { return "must not be empty" }
        if s.utf8.count > 63 { return "\"\(s)\" is longer than 63 characters" }
        if let bad = labelProblem(Substring(s)) { return "\"\(s)\" is not a valid DNS-1123 label (\(bad))" }
        return nil
    }

    /// Kubernetes DNS-1123 subdomain: metadata.name.
    static func dns1123Subdomain(_ s: String) -> String? {
        if s.isEmpty { return "must not be empty" }
        if s.utf8.count > 253 { return "\"\(s)\" is longer than 253 characters" }
        for label in s.split(separator: ".", omittingEmptySubsequences: false) {
            if let bad = labelProblem(label) { return "\"\(s)\" is not a valid DNS-1123 subdomain (\(bad))" }
        }
        return nil
    }

    /// A ServiceEntry host without wildcard: dot-separated DNS-1123 labels (Istio's
    /// `ValidateWildcardDomain` minus the `*.` prefix). A trailing dot is allowed, an all-numeric
    /// last label is not (so IP addresses are not hostnames).
    static func hostname(_ s: String) -> String? {
        if s.isEmpty { return "must not be empty" }
        if s.utf8.count > 255 { return "\"\(s)\" is longer than 255 characters" }
        var labels = s.split(separator: ".", omittingEmptySubsequences: false)
        if labels.count > 1, labels.last!.isEmpty { labels.removeLast() }  // "istio.io."
        for label in labels {
            if let bad = labelProblem(label) { return "\"\(s)\" is not a valid hostname (\(bad))" }
        }
        if let last = labels.last, last.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
            return "\"\(s)\" is not a valid hostname (the last label \"\(last)\" is all digits)"
        }
        return nil
    }

    /// An IPv4 dotted quad or an IPv6 literal (no brackets, no zone), as `inet_pton` reads them.
    static func isIPLiteral(_ s: String) -> Bool {
        var buf = (UInt64(0), UInt64(0))  // 16 bytes: room for in6_addr
        return withUnsafeMutableBytes(of: &buf) { p in
            inet_pton(AF_INET, s, p.baseAddress) == 1 || inet_pton(AF_INET6, s, p.baseAddress) == 1
        }
    }

    private static func labelProblem(_ label: Substring) -> String? {
        if label.isEmpty { return "empty label" }
        if label.utf8.count > 63 { return "label \"\(label)\" is longer than 63 characters" }
        for u in label.utf8 {
            switch u {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"):
                continue
            case UInt8(ascii: "A")...UInt8(ascii: "Z"):
                return "must be lowercase"
            default:
                return "label \"\(label)\" may only contain a-z, 0-9 and '-'"
            }
        }
        if label.utf8.first == UInt8(ascii: "-") || label.utf8.last == UInt8(ascii: "-") {
            return "label \"\(label)\" must start and end with a letter or digit"
        }
        return nil
    }
}
