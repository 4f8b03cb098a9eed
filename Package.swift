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
        .systemLibrary(
            name: "COpenSSL", path: "Sources/COpenSSL", pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]),
        .target(name: "FastPush", dependencies: ["CUring", "CNghttp2", "COpenSSL"], swiftSettings: strict),
        .executableTarget(name: "fastpilot", dependencies: ["FastPush"], swiftSettings: strict),
        .executableTarget(name: "fastpilot-bench", dependencies: ["FastPush"], path: "Benchmarks/fastpilot-bench",
                          swiftSettings: strict),
        // Fuzzing (Tests/Fuzz/README.md): the targets as a library, so the corpus replay test
        // runs the same entry points; one executable drives them under libFuzzer (make fuzz) or
        // replays files. CLibFuzzer only declares LLVMFuzzerRunDriver for the -DFUZZING build.
        .target(name: "FuzzTargets", dependencies: ["FastPush"], path: "Tests/Fuzz/FuzzTargets", swiftSettings: strict),
        .systemLibrary(name: "CLibFuzzer", path: "Tests/Fuzz/CLibFuzzer"),
        .executableTarget(name: "fastpilot-fuzz", dependencies: ["FuzzTargets", "CLibFuzzer"], path: "Tests/Fuzz/Driver",
                          swiftSettings: strict),
        .testTarget(name: "FastPushTests", dependencies: ["FastPush", "FuzzTargets"], swiftSettings: strict),
    ]
)
