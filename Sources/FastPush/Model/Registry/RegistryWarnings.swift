import Synchronization

/// Logs each distinct registry warning once per process. The registry file is re-parsed on
/// every change; an unsupported field that stays in the file must not log again each time.
final class RegistryWarnings: Sendable {
    static let shared = RegistryWarnings()

    /// Past this many distinct messages, stop remembering (memory bound); later ones log each time.
    static let capacity = 10_000

    private let seen = Mutex<Set<String>>([])

    /// True the first time `message` is offered.
    func isNew(_ message: String) -> Bool {
        seen.withLock { set in
            if set.contains(message) { return false }
            if set.count < Self.capacity { set.insert(message) }
            return true
        }
    }

    /// One `registry_unsupported` warning line for each message not logged before.
    func log(_ messages: [String], file: String) {
        for m in messages where isNew(m) {
            Log.warn("registry_unsupported", ["file": file, "detail": m])
        }
    }
}
