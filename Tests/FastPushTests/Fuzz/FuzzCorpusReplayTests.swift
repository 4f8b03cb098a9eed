import Foundation
import Testing
import FuzzTargets

/// Every committed fuzz input (Tests/Fuzz/corpus/<target>/: seeds and the reproducers of bugs
/// the fuzzers found) goes through the same entry point libFuzzer calls, so a regression shows
/// up in `make test` without a fuzzer. A trap ends the test process; an invariant the target
/// checks fails the test with the input's name.
@Suite struct FuzzCorpusReplayTests {
    static let corpus = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/corpus")

    static func files(_ target: String) throws -> [URL] {
        let dir = corpus.appendingPathComponent(target)
        return try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)
            .filter { !$0.lastPathComponent.hasPrefix(".") }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    /// FileHandle, not Data(contentsOf:): in this Foundation the latter leaks its read buffer for
    /// an empty file (LeakSanitizer in `make asan`), and two seeds are empty.
    static func read(_ file: URL) throws -> [UInt8] {
        let handle = try FileHandle(forReadingFrom: file)
        defer { try? handle.close() }
        return [UInt8](try handle.readToEnd() ?? Data())
    }

    @Test(arguments: FuzzTargets.names)
    func committedCorpus(_ name: String) throws {
        let target = try #require(FuzzTargets.named(name))
        let inputs = try Self.files(name)
        #expect(inputs.count >= 15, "Tests/Fuzz/corpus/\(name) has \(inputs.count) inputs")
        for file in inputs {
            let bytes = try Self.read(file)
            do throws(FuzzViolation) {
                try target.run(bytes)
            } catch {
                Issue.record("\(name)/\(file.lastPathComponent): \(error)")
            }
        }
    }

    /// The seed generators themselves (`fastpilot-fuzz gen-corpus`) still produce inputs that pass.
    @Test(arguments: FuzzTargets.names)
    func generatedSeeds(_ name: String) throws {
        let target = try #require(FuzzTargets.named(name))
        for (seed, bytes) in target.seeds() {
            do throws(FuzzViolation) {
                try target.run(bytes)
            } catch {
                Issue.record("seed \(name)/\(seed): \(error)")
            }
        }
    }
}
