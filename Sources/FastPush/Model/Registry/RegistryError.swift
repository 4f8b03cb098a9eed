/// Why a registry could not be loaded. Every problem line names the file, and where it applies
/// the object (`items[3] (ServiceEntry default/echo)`) and the field (`spec.ports[1].number`):
///
///     registry.json: items[3] (ServiceEntry default/echo): spec.ports[1].number: must be 1..65535, got 70000
public struct RegistryError: Error, CustomStringConvertible, Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        /// The file could not be opened or read (missing, permission, a directory, too large).
        case unreadable
        /// The bytes are not JSON.
        case malformedJSON
        /// JSON, but not a valid ServiceEntry list.
        case invalid
        /// The watched file disappeared; the caller keeps its last good registry.
        case removed
    }

    public struct Problem: Hashable, Sendable, CustomStringConvertible {
        /// e.g. `items[3] (ServiceEntry default/echo)`; nil for file-level problems.
        public var object: String?
        /// e.g. `spec.ports[1].number`; nil when the object itself is wrong.
        public var field: String?
        public var message: String

        public init(object: String? = nil, field: String? = nil, message: String) {
            self.object = object; self.field = field; self.message = message
        }

        public var description: String {
            [object, field, message].compactMap { $0 }.joined(separator: ": ")
        }
    }

    public var kind: Kind
    /// The file (path as given) or other source label, e.g. `request body`.
    public var file: String
    /// At most `RegistryError.maxProblems`, in document order.
    public var problems: [Problem]
    /// Problems found beyond the cap.
    public var omitted: Int

    /// Collect this many problems, then only count.
    public static let maxProblems = 20

    public init(kind: Kind, file: String, problems: [Problem], omitted: Int = 0) {
        self.kind = kind; self.file = file; self.problems = problems; self.omitted = omitted
    }

    init(kind: Kind, file: String, _ message: String) {
        self.init(kind: kind, file: file, problems: [Problem(message: message)])
    }

    /// One line per problem, each prefixed with the file name.
    public var description: String {
        var lines = problems.map { "\(file): \($0)" }
        if omitted > 0 { lines.append("\(file): ... and \(omitted) more problem\(omitted == 1 ? "" : "s")") }
        return lines.joined(separator: "\n")
    }
}
