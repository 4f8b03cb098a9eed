/// UTF-8 validation for decoded `string` fields. The stdlib's `String(validating:as:)` is
/// generic and looks up type metadata on every call, which dominated DiscoveryRequest
/// decoding; this checks 8 ASCII bytes at a time and then builds the String with the
/// non-generic `String(decoding:as:)`, which for valid input copies the bytes unchanged.
enum UTF8Validation {
    static func string(from bytes: UnsafeBufferPointer<UInt8>) -> String? {
        guard isValid(bytes) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// RFC 3629: no overlong forms, no surrogates (U+D800...U+DFFF), nothing above U+10FFFF.
    static func isValid(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        let n = bytes.count
        var i = 0
        while i < n {
            // ASCII fast path, one word at a time.
            while i + 8 <= n {
                let word = UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self)
                if word & 0x8080_8080_8080_8080 != 0 { break }
                i += 8
            }
            guard i < n else { return true }
            let b0 = base[i]
            if b0 < 0x80 {
                i += 1
                continue
            }
            // Lead byte: expected length and the allowed range of the first continuation byte.
            let len: Int
            var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
            switch b0 {
            case 0xC2...0xDF: len = 2
            case 0xE0: len = 3; lo = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: len = 3
            case 0xED: len = 3; hi = 0x9F
            case 0xF0: len = 4; lo = 0x90
            case 0xF1...0xF3: len = 4
            case 0xF4: len = 4; hi = 0x8F
            default: return false  // continuation byte as lead, C0/C1 overlong, F5...FF
            }
            guard n - i >= len else { return false }
            let b1 = base[i + 1]
            guard b1 >= lo && b1 <= hi else { return false }
            if len >= 3 && base[i + 2] & 0xC0 != 0x80 { return false }
            if len == 4 && base[i + 3] & 0xC0 != 0x80 { return false }
            i += len
        }
        return true
    }
}
