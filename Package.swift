// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "fastpilot",
    products: [
        .library(name: "FastPush", targets: ["FastPush"]),
        .executable(name: "fastpilot", targets: ["fastpilot"]),
    ],
    targets: [
        .systemLibrary(
            name: "CUring", path: "Sources/CUring", pkgConfig: "liburing",
            providers: [.apt(["liburing-dev"])]),
        .systemLibrary(
            name: "CNghttp2", path: "Sources/CNghttp2", pkgConfig: "libnghttp2",
            providers: [.apt(["libnghttp2-dev"])]),
        .target(name: "FastPush", dependencies: ["CUring", "CNghttp2"], swiftSettings: strict),
        .executableTarget(name: "fastpilot", dependencies: ["FastPush"], swiftSettings: strict),
        .executableTarget(name: "fastpilot-bench", dependencies: ["FastPush"], path: "Benchmarks/fastpilot-bench",
                          swiftSettings: strict),
        .testTarget(name: "FastPushTests", dependencies: ["FastPush"], swiftSettings: strict),
    ]
)
