@testable import FastPush

/// Hand-built HTTP/2 frames for hostile tests: bytes a real client library would refuse to send.
/// Header blocks are HPACK literals without indexing and without Huffman coding.
enum RawH2 {
    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    enum FrameType: UInt8 {
        case data = 0, headers, priority, rstStream, settings, pushPromise, ping, goAway, windowUpdate, continuation
    }

    static let endStream: UInt8 = 0x1
    static let ack: UInt8 = 0x1
    static let endHeaders: UInt8 = 0x4

    static func frame(_ type: FrameType, flags: UInt8 = 0, stream: UInt32 = 0, _ payload: [UInt8] = []) -> [UInt8] {
        let n = payload.count
        return [UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF), type.rawValue, flags] + be32(stream & 0x7FFF_FFFF) + payload
    }

    static func be32(_ v: UInt32) -> [UInt8] {
        [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
    }

    static func settings(_ entries: [(UInt16, UInt32)] = [], ack: Bool = false) -> [UInt8] {
        var p: [UInt8] = []
        for (id, v) in entries { p += [UInt8(id >> 8), UInt8(id & 0xFF)] + be32(v) }
        return frame(.settings, flags: ack ? Self.ack : 0, p)
    }

    /// The client preface: magic and an empty SETTINGS.
    static var clientPreface: [UInt8] { preface + settings() }

    static func hpackInt(_ value: Int, prefixBits: Int, first: UInt8 = 0) -> [UInt8] {
        let limit = (1 << prefixBits) - 1
        if value < limit { return [first | UInt8(value)] }
        var out: [UInt8] = [first | UInt8(limit)]
        var v = value - limit
        while v >= 128 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        out.append(UInt8(v))
        return out
    }

    static func block(_ fields: [(String, String)]) -> [UInt8] {
        var out: [UInt8] = []
        for (n, v) in fields {
            out.append(0)
            out += hpackInt(n.utf8.count, prefixBits: 7) + Array(n.utf8)
            out += hpackInt(v.utf8.count, prefixBits: 7) + Array(v.utf8)
        }
        return out
    }

    static func request(path: String = "/test.Echo/Echo", extra: [(String, String)] = []) -> [(String, String)] {
        [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "hostile"),
         ("content-type", "application/grpc"), ("te", "trailers")] + extra
    }

    static func headers(stream: UInt32, _ fields: [(String, String)], endStream: Bool = false, endHeaders: Bool = true) -> [UInt8] {
        frame(.headers, flags: (endStream ? Self.endStream : 0) | (endHeaders ? Self.endHeaders : 0), stream: stream, block(fields))
    }

    /// A header block split into HEADERS and CONTINUATION frames of at most `maxFrame` bytes.
    static func headerFrames(stream: UInt32, _ block: [UInt8], endStream: Bool = false, maxFrame: Int = 16384) -> [UInt8] {
        var out: [UInt8] = []
        var pos = 0
        repeat {
            let n = min(maxFrame, block.count - pos)
            let last = pos + n == block.count
            let chunk = Array(block[pos..<(pos + n)])
            if pos == 0 {
                out += frame(.headers, flags: (endStream ? Self.endStream : 0) | (last ? Self.endHeaders : 0), stream: stream, chunk)
            } else {
                out += frame(.continuation, flags: last ? Self.endHeaders : 0, stream: stream, chunk)
            }
            pos += n
        } while pos < block.count
        return out
    }

    static func data(stream: UInt32, _ payload: [UInt8], endStream: Bool = false) -> [UInt8] {
        frame(.data, flags: endStream ? Self.endStream : 0, stream: stream, payload)
    }

    static func rst(stream: UInt32, code: UInt32 = 8) -> [UInt8] { frame(.rstStream, stream: stream, be32(code)) }
    static func ping(ack: Bool = false) -> [UInt8] { frame(.ping, flags: ack ? Self.ack : 0, Array("hostile!".utf8)) }
    static func windowUpdate(stream: UInt32, _ increment: UInt32) -> [UInt8] { frame(.windowUpdate, stream: stream, be32(increment)) }

    struct Frame: CustomStringConvertible {
        var type: UInt8
        var flags: UInt8
        var stream: UInt32
        var payload: [UInt8]

        var errorCode: UInt32? {
            switch type {
            case FrameType.rstStream.rawValue where payload.count >= 4: return RawH2.u32(payload, 0)
            case FrameType.goAway.rawValue where payload.count >= 8: return RawH2.u32(payload, 4)
            default: return nil
            }
        }

        var description: String {
            "<type \(type) flags \(flags) stream \(stream) len \(payload.count)\(errorCode.map { " " + H2Connection.errorName($0) } ?? "")>"
        }
    }

    static func u32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
    }

    static func parse(_ bytes: [UInt8]) -> [Frame] {
        var out: [Frame] = []
        var i = 0
        while bytes.count - i >= 9 {
            let n = Int(bytes[i]) << 16 | Int(bytes[i + 1]) << 8 | Int(bytes[i + 2])
            guard bytes.count - i - 9 >= n else { break }
            out.append(Frame(type: bytes[i + 3], flags: bytes[i + 4], stream: u32(bytes, i + 5) & 0x7FFF_FFFF,
                             payload: Array(bytes[(i + 9)..<(i + 9 + n)])))
            i += 9 + n
        }
        return out
    }
}

/// A server H2Connection driven by raw bytes: what it answers, and whether it wants to go on.
final class RawServer {
    let h2: H2Connection
    var alive = true
    var frames: [RawH2.Frame] = []

    init(settings: H2Settings = H2Settings()) {
        h2 = H2Connection(role: .server, settings: settings)
    }

    /// Feeds bytes (stops at the first failure, as the channel handler does).
    @discardableResult
    func feed(_ bytes: [UInt8]) -> Bool {
        guard alive else { return false }
        alive = bytes.withUnsafeBytes { h2.receive($0) }
        return alive
    }

    /// Takes what the server has to send and parses it.
    @discardableResult
    func read() -> [RawH2.Frame] {
        var out = OutboundBuffer()
        h2.produce(into: &out, budget: 1 << 24)
        let new = RawH2.parse(out.drain())
        frames += new
        return new
    }

    var goAways: [RawH2.Frame] { frames.filter { $0.type == RawH2.FrameType.goAway.rawValue } }
    func resets(_ code: UInt32? = nil) -> [RawH2.Frame] {
        frames.filter { $0.type == RawH2.FrameType.rstStream.rawValue && (code == nil || $0.errorCode == code) }
    }
}
