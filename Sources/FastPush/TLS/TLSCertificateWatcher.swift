#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Rotation without a restart: polls the certificate, key and CA files (stat: inode, size,
/// mtime, ctime, so an atomic rename and an in-place write both count) and, when one changed,
/// builds a new context for new handshakes. A file that does not load (half written, a key that
/// does not match) is reported once per change and the last good context is kept.
public final class TLSCertificateWatcher: Sendable {
    private let holder: TLSContextHolder
    private let configuration: TLSContext.Configuration
    private let interval: UInt64
    private let onReload: @Sendable (Result<Void, TLSContext.ConfigError>) -> Void
    private let wake = Semaphore()
    private let stopped = Atomic<Bool>(false)
    private let thread = Mutex<OSThread?>(nil)

    public init(holder: TLSContextHolder, configuration: TLSContext.Configuration, intervalNanos: UInt64 = 1_000_000_000,
                onReload: @escaping @Sendable (Result<Void, TLSContext.ConfigError>) -> Void = { _ in }) {
        self.holder = holder
        self.configuration = configuration
        self.interval = intervalNanos
        self.onReload = onReload
    }

    public func start() {
        let seen = identities()
        thread.withLock { $0 = OSThread.spawn(name: "fp-tls-watch") { [self] in run(seen) } }
    }

    public func stop() {
        stopped.store(true, ordering: .sequentiallyConsistent)
        wake.signal()
        thread.withLock { t in
            t?.join()
            t = nil
        }
    }

    private func run(_ initial: [FileIdentity?]) {
        var seen = initial
        while !stopped.load(ordering: .sequentiallyConsistent) {
            _ = wake.wait(timeoutNanos: interval)
            if stopped.load(ordering: .sequentiallyConsistent) { return }
            let now = identities()
            guard now != seen else { continue }
            seen = now
            do {
                let ctx = try TLSContext(configuration)
                holder.replace(ctx)
                Log.info("tls_reloaded", ["cert": configuration.certificatePath ?? "", "key": configuration.keyPath ?? ""])
                onReload(.success(()))
            } catch {
                Log.warn("tls_reload_failed", ["error": error.description, "action": "keeping the last good certificate"])
                onReload(.failure(error))
            }
        }
    }

    private func identities() -> [FileIdentity?] {
        [configuration.certificatePath, configuration.keyPath, configuration.trustPath].map { path in
            guard let path else { return nil }
            var st = stat()
            return stat(path, &st) == 0 ? FileIdentity(st) : nil
        }
    }
}
