import Synchronization

/// One type's resources for one scope (namespace view, wildcard, subscription) in one
/// PushContext, sorted by name, with their versions: what a Delta stream in that scope should
/// hold. Built once per PushContext and scope (`DeltaTables`), shared by every stream in it.
///
/// A stream holding `versions` already is in sync (one pointer comparison). Otherwise it needs
/// a patch from what it holds; streams that hold the same set (they were in sync with the same
/// earlier table) get the same patch, built once here and written to all of them.
public final class ResourceTable: Sendable {
    public let type: XdsType
    public let versions: VersionSet
    /// Parallel to `versions.names`.
    public let resources: [EncodedResource]
    private let patches = Mutex<[PatchKey: DeltaPatch]>([:])

    /// Patches cached per table: beyond this (many distinct claimed sets, say), a patch is built
    /// per stream and not kept.
    static let maxCachedPatches = 256

    /// `resources` in any order; a name that appears twice keeps its first resource.
    public init(type: XdsType, resources: [EncodedResource]) {
        var sorted = resources.sorted { $0.name < $1.name }
        if sorted.count > 1 {
            var unique: [EncodedResource] = [sorted[0]]
            unique.reserveCapacity(sorted.count)
            for r in sorted.dropFirst() where r.name != unique[unique.count - 1].name { unique.append(r) }
            sorted = unique
        }
        self.type = type
        self.resources = sorted
        self.versions = VersionSet.of(sortedNames: sorted.map(\.name), versions: sorted.map(\.version))
    }

    private struct PatchKey: Hashable {
        let from: ObjectIdentifier
        let resend: ObjectIdentifier?
    }

    /// What a stream holding `held` must receive to hold this table: every resource whose
    /// version differs or that it lacks, every name in `resend` that exists whatever its
    /// version, and (CDS, LDS) the names it holds that are gone, plus the `resend` names that do
    /// not exist (a requested resource that does not exist is reported removed). For EDS and RDS
    /// names left behind are simply forgotten: they were unsubscribed, and a removal means
    /// nothing to Envoy there.
    public func patch(from held: VersionSet, resend: SubscriptionSet? = nil) -> DeltaPatch {
        let key = PatchKey(from: ObjectIdentifier(held), resend: resend.map(ObjectIdentifier.init))
        if let hit = patches.withLock({ $0[key] }) { return hit }
        let p = DeltaPatch.build(from: held, to: self, resend: resend)
        patches.withLock { cache in
            if cache.count < Self.maxCachedPatches, cache[key] == nil { cache[key] = p }
        }
        return p
    }

    var cachedPatchCount: Int { patches.withLock { $0.count } }
}

/// The difference between what a stream holds and a table: a DeltaDiscoveryResponse body (nil
/// when there is nothing to send) and what it carries. Shared by every stream making the same
/// move; it keeps `from` and `resend` alive, so the table's cache keys stay unique.
public final class DeltaPatch: Sendable {
    public let from: VersionSet
    public let resend: SubscriptionSet?
    public let body: EncodedBody?
    /// Names in `resources`, sorted.
    public let sent: [String]
    public let removed: [String]
    /// Resources in the table that the stream already held at the same version.
    public let skipped: Int

    init(from: VersionSet, resend: SubscriptionSet?, body: EncodedBody?, sent: [String], removed: [String], skipped: Int) {
        self.from = from
        self.resend = resend
        self.body = body
        self.sent = sent
        self.removed = removed
        self.skipped = skipped
    }

    public var isEmpty: Bool { sent.isEmpty && removed.isEmpty }

    static func build(from held: VersionSet, to table: ResourceTable, resend: SubscriptionSet?) -> DeltaPatch {
        let removable = table.type.isWildcardType
        let a = held.names, av = held.versions
        let b = table.versions.names, bv = table.versions.versions
        var send: [EncodedResource] = []
        var removed: [String] = []
        var skipped = 0
        var i = 0, j = 0
        while i < a.count || j < b.count {
            if j == b.count || (i < a.count && a[i] < b[j]) {
                if removable { removed.append(a[i]) }
                i += 1
            } else if i == a.count || b[j] < a[i] {
                send.append(table.resources[j])
                j += 1
            } else {
                if av[i] != bv[j] || resend?.contains(b[j]) == true {
                    send.append(table.resources[j])
                } else {
                    skipped += 1
                }
                i += 1
                j += 1
            }
        }
        if removable, let resend {
            for name in resend.names where !table.versions.contains(name) && !held.contains(name) { removed.append(name) }
            removed.sort()
        }
        var body: EncodedBody?
        if !send.isEmpty || !removed.isEmpty {
            body = EncodedBody(bytes: DeltaDiscoveryResponseBody.encode(typeURL: table.type.typeURL, resources: send, removed: removed),
                               resourceCount: send.count)
        }
        return DeltaPatch(from: held, resend: resend, body: body, sent: send.map(\.name), removed: removed, skipped: skipped)
    }

    /// The body of a response that carries nothing (a first request with nothing to send is still
    /// answered: the client waits for it).
    static func emptyBody(_ type: XdsType) -> EncodedBody { emptyBodies[type.rawValue] }

    private static let emptyBodies = XdsType.allCases.map {
        EncodedBody(bytes: DeltaDiscoveryResponseBody.encode(typeURL: $0.typeURL, resources: [], removed: []), resourceCount: 0)
    }
}
