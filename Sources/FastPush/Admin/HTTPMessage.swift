/// An admin API request, after parsing and size checks.
public struct HTTPRequest: Sendable {
    public var method: String
    public var path: String
    public var query: [String: String]
    /// Lower-cased names.
    public var headers: [String: String]
    public var body: [UInt8]

    public init(method: String, path: String, query: [String: String] = [:], headers: [String: String] = [:], body: [UInt8] = []) {
        self.method = method; self.path = path; self.query = query; self.headers = headers; self.body = body
    }
}

public struct HTTPResponse: Sendable {
    public var status: Int
    public var contentType: String
    public var body: [UInt8]
    public var headers: [(String, String)] = []

    public init(status: Int, contentType: String = "text/plain; charset=utf-8", body: [UInt8]) {
        self.status = status; self.contentType = contentType; self.body = body
    }

    public init(status: Int, text: String) {
        self.init(status: status, body: Array(text.utf8))
    }

    public static func json(_ status: Int, _ json: String) -> HTTPResponse {
        HTTPResponse(status: status, contentType: "application/json", body: Array(json.utf8))
    }

    /// 4xx/5xx with `{"error": "..."}`.
    public static func error(_ status: Int, _ message: String) -> HTTPResponse {
        json(status, "{\"error\":\(JSONText.quote(message))}\n")
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"; case 201: "Created"; case 204: "No Content"; case 400: "Bad Request"
        case 401: "Unauthorized"; case 404: "Not Found"; case 405: "Method Not Allowed"
        case 408: "Request Timeout"; case 409: "Conflict"; case 411: "Length Required"; case 413: "Payload Too Large"
        case 431: "Request Header Fields Too Large"; case 500: "Internal Server Error"
        case 501: "Not Implemented"; case 503: "Service Unavailable"; case 504: "Gateway Timeout"
        default: "Status"
        }
    }

    func serialized() -> [UInt8] {
        var head = "HTTP/1.1 \(status) \(HTTPResponse.reason(status))\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        head += "\r\n"
        return Array(head.utf8) + body
    }
}
