/// Collects validation problems while parsing, keeping the first `RegistryError.maxProblems`
/// and counting the rest, so one run reports everything wrong with a file instead of one
/// problem per edit-reload cycle.
struct RegistryProblems {
    private(set) var problems: [RegistryError.Problem] = []
    private(set) var omitted = 0
    private(set) var warnings: [String] = []

    var isEmpty: Bool { problems.isEmpty && omitted == 0 }

    mutating func add(object: String?, field: String?, _ message: String) {
        if problems.count < RegistryError.maxProblems {
            problems.append(.init(object: object, field: field, message: message))
        } else {
            omitted += 1
        }
    }

    /// Something valid for Istio that fastpilot does not support; logged once per process.
    mutating func warn(_ message: String) {
        if !warnings.contains(message) { warnings.append(message) }
    }

    func error(file: String) -> RegistryError {
        RegistryError(kind: .invalid, file: file, problems: problems, omitted: omitted)
    }
}

extension RegistryProblems {
    /// Takes over another collector's problems (keeping the cap) and warnings.
    mutating func absorb(_ other: RegistryProblems) {
        for p in other.problems { add(object: p.object, field: p.field, p.message) }
        omitted += other.omitted
        for w in other.warnings { warn(w) }
    }
}
