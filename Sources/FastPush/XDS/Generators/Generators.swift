/// Which types a request touches, and the generator per type.
public enum Generators {
    /// Istio's xdsNeedsPush per type (R1.30): CDS, LDS and RDS need a full push and react to
    /// service changes only; EDS reacts to endpoint and service changes. Forced: everything.
    /// A request that names no change pushes nothing (≥1.26).
    public static func needsPush(_ type: XdsType, _ request: PushRequest) -> Bool {
        if request.forced { return true }
        guard let cu = request.configsUpdated, !cu.isEmpty else { return false }
        switch type {
        case .cds, .lds, .rds:
            return request.full && cu.contains { $0.kind != .endpoints }
        case .eds:
            return cu.contains { $0.kind == .endpoints || $0.kind == .serviceEntry }
        }
    }

    /// nil: nothing to send for this stream.
    public static func generate(_ type: XdsType, _ c: GeneratorContext) -> XdsResponse? {
        switch type {
        case .cds: CDSGenerator.generate(c)
        case .eds: EDSGenerator.generate(c)
        case .lds: LDSGenerator.generate(c)
        case .rds: RDSGenerator.generate(c)
        }
    }
}

extension Generators {
    /// The Delta resource table of `type` for the context's proxy scope: every resource the
    /// watch covers, with its version. Built once per PushContext and scope.
    public static func table(_ type: XdsType, _ c: GeneratorContext) -> ResourceTable {
        let key = TableKey(view: c.view.id, wildcard: c.watch.wildcard, subscription: c.watch.names)
        return c.push.cache.tables(type).get(key) {
            let resources: [EncodedResource]
            switch type {
            case .cds: resources = CDSGenerator.resources(c)
            case .eds: resources = EDSGenerator.resources(c)
            case .lds: resources = LDSGenerator.resources(c, explicitWithWildcard: true)
            case .rds: resources = RDSGenerator.resources(c)
            }
            return ResourceTable(type: type, resources: resources)
        }
    }
}
