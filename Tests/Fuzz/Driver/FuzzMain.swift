#if canImport(Glibc)
import Glibc
#endif
import FastPush
import FuzzTargets
#if FUZZING
import CLibFuzzer
#endif

/// fastpilot-fuzz: one executable for every fuzz target.
///
/// Fuzz build (`make fuzz`; compiled with -DFUZZING, coverage instrumentation and libFuzzer's
/// `libclang_rt.fuzzer_no_main`): `FUZZ_TARGET=<name> fastpilot-fuzz [libFuzzer flags] [corpus dirs]`
/// hands control to libFuzzer through `LLVMFuzzerRunDriver`, so the program keeps its own main.
///
/// Any build:
///   fastpilot-fuzz list
///   fastpilot-fuzz replay [-v] <target> <file or dir>...   run inputs once, report violations
///   fastpilot-fuzz gen-corpus <dir>                   write the seed corpora to <dir>/<target>/
@main
struct FuzzMain {
    static func main() {
        let args = Array(CommandLine.arguments.dropFirst())
        #if FUZZING
        if let name = environment("FUZZ_TARGET") {
            runLibFuzzer(name)
        }
        #endif
        switch args.first {
        case "list":
            for t in FuzzTargets.all { print("\(t.name)\t\(t.summary)") }
        case "replay" where args.count >= 3:
            var rest = Array(args.dropFirst())
            let verbose = rest.first == "-v"
            if verbose { rest.removeFirst() }
            guard rest.count >= 2, let target = FuzzTargets.named(rest[0]) else { usage("replay: unknown target or no input") }
            Log.setLevel(.error)
            if verbose { FuzzTargets.trace = { print("  " + $0) } }
            var failed = 0, ran = 0
            for file in rest.dropFirst().flatMap(expand) {
                ran += 1
                if verbose { print(file) }
                do throws(FuzzViolation) {
                    try target.run(readFile(file))
                } catch {
                    failed += 1
                    print("FAIL \(file): \(error)")
                }
            }
            print("\(target.name): \(ran) inputs, \(failed) failed")
            exit(failed == 0 ? 0 : 1)
        case "gen-corpus" where args.count == 2:
            Log.setLevel(.error)
            for t in FuzzTargets.all {
                let dir = args[1] + "/" + t.name
                mkdir(dir, 0o755)
                for (name, bytes) in t.seeds() { writeFile(dir + "/" + name, bytes) }
                print("\(dir): \(t.seeds().count) seeds")
            }
        default:
            usage(nil)
        }
    }

    #if FUZZING
    /// libFuzzer calls back into a C function pointer: the target lives in a global.
    nonisolated(unsafe) static var selected: FuzzTarget?

    static func runLibFuzzer(_ name: String) -> Never {
        guard let target = FuzzTargets.named(name) else {
            usage("FUZZ_TARGET=\(name) is not a target (\(FuzzTargets.names.joined(separator: ", ")))")
        }
        selected = target
        Log.setLevel(.error)
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        let rc = LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            let bytes = UnsafeRawBufferPointer(start: data, count: size)
            do throws(FuzzViolation) {
                try FuzzMain.selected!.run(bytes)
            } catch {
                // A crash for libFuzzer: it saves the input as crash-<sha1>.
                fatalError(error.description)
            }
            return 0
        }
        exit(rc)
    }
    #endif

    static func environment(_ name: String) -> String? {
        guard let v = getenv(name) else { return nil }
        let s = String(cString: v)
        return s.isEmpty ? nil : s
    }

    static func usage(_ error: String?) -> Never {
        if let error { printError("fastpilot-fuzz: \(error)\n") }
        printError("""
            usage: fastpilot-fuzz list
                   fastpilot-fuzz replay [-v] <target> <file or dir>...
                   fastpilot-fuzz gen-corpus <dir>
                   FUZZ_TARGET=<target> fastpilot-fuzz [libFuzzer options] [corpus dir...]   (fuzz build only)
            targets: \(FuzzTargets.names.joined(separator: ", "))

            """)
        exit(2)
    }
}

/// A directory's regular files (sorted), or the path itself.
func expand(_ path: String) -> [String] {
    guard let d = opendir(path) else { return [path] }
    defer { closedir(d) }
    var out: [String] = []
    while let e = readdir(d) {
        let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name.hasPrefix(".") { continue }
        out.append(path + "/" + name)
    }
    return out.sorted()
}

func readFile(_ path: String) -> [UInt8] {
    guard let f = fopen(path, "rb") else { FuzzMain.usage("cannot open \(path)") }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&buf, 1, buf.count, f)
        if n <= 0 { break }
        out += buf[..<n]
    }
    return out
}

func writeFile(_ path: String, _ bytes: [UInt8]) {
    guard let f = fopen(path, "wb") else { FuzzMain.usage("cannot write \(path)") }
    _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
    fclose(f)
}

func printError(_ s: String) {
    var s = s
    s.withUTF8 { p in _ = write(2, p.baseAddress, p.count) }
}
