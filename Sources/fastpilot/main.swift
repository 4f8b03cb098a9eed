#if canImport(Glibc)
import Glibc
#endif
import FastPush

let usage = """
    fastpilot: an xDS control plane push engine (Istio pilot-discovery's push path).

    Usage:
      fastpilot serve [flags]     serve ADS on :15010 and the admin API on :15014
      fastpilot loadgen [flags]   simulated ADS clients; push latency against any ADS server
      fastpilot store import FILE --store etcd://HOST:PORT [--store-prefix P]
                                  write the ServiceEntries of FILE (a kubectl List) into etcd
      fastpilot store export --store etcd://HOST:PORT [--store-prefix P]
                                  print every ServiceEntry in etcd as a List
      fastpilot help              this text

    Run `fastpilot serve --help` for the flags.

    """

/// Blocks SIGINT and SIGTERM in every thread (threads inherit the mask), so that the main
/// thread can take them with sigwait.
func blockStopSignals() -> sigset_t {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGINT)
    sigaddset(&set, SIGTERM)
    pthread_sigmask(SIG_BLOCK, &set, nil)
    return set
}

func printError(_ s: String) {
    var line = s.hasSuffix("\n") ? s : s + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

func serve(_ args: [String]) -> Int32 {
    if args.contains("--help") || args.contains("-h") {
        print(ServeOptions.help, terminator: "")
        return 0
    }
    let options: ServeOptions
    do {
        options = try ServeOptions.parse(args, env: ProcessEnv.all())
    } catch {
        printError("fastpilot serve: \(error)")
        return 2
    }
    var signals = blockStopSignals()
    let server: FastPilotServer
    do {
        server = try FastPilotServer(options: options)
    } catch {
        Log.error("start_failed", ["error": "\(error)"])
        return 1
    }
    var sig: Int32 = 0
    sigwait(&signals, &sig)
    Log.info("signal", ["signal": sig == SIGINT ? "SIGINT" : "SIGTERM"])
    server.drainAndStop()
    return 0
}

func loadgen(_ args: [String]) -> Int32 {
    if args.contains("--help") || args.contains("-h") {
        print(LoadGenOptions.help, terminator: "")
        return 0
    }
    let options: LoadGenOptions
    do {
        options = try LoadGenOptions.parse(args)
    } catch {
        printError("fastpilot loadgen: \(error)")
        return 2
    }
    do {
        let report = try LoadGenerator(options: options).run()
        print(report.table(), terminator: "")
        if let path = options.jsonPath { try writeFile(path, report.json()) }
        if let path = options.svgPath { try writeFile(path, report.svg()) }
        if !report.success {
            printError("fastpilot loadgen: some streams did not converge before --timeout")
            return 1
        }
        return 0
    } catch {
        printError("fastpilot loadgen: \(error)")
        return 1
    }
}

func store(_ args: [String]) -> Int32 {
    var url: String?
    var prefix = "/fastpilot/"
    var positional: [String] = []
    var i = 0
    while i < args.count {
        switch args[i] {
        case "--store":
            i += 1
            url = i < args.count ? args[i] : nil
        case "--store-prefix":
            i += 1
            if i < args.count { prefix = args[i] }
        case "--help", "-h":
            print(usage, terminator: "")
            return 0
        default:
            positional.append(args[i])
        }
        i += 1
    }
    guard let url else { printError("fastpilot store: --store etcd://HOST:PORT is required"); return 2 }
    do {
        switch positional.first {
        case "import":
            guard positional.count == 2 else { printError("fastpilot store import FILE --store ..."); return 2 }
            print(try StoreTool.importFile(positional[1], url: url, prefix: prefix), terminator: "")
        case "export":
            print(try StoreTool.export(url: url, prefix: prefix), terminator: "")
        default:
            printError("fastpilot store: import FILE or export\n\n\(usage)")
            return 2
        }
        return 0
    } catch {
        printError("fastpilot store: \(error)")
        return 1
    }
}

func writeFile(_ path: String, _ text: String) throws {
    guard let f = fopen(path, "w") else { throw SocketError(operation: "open \(path)", errno: errno) }
    defer { fclose(f) }
    var t = text
    t.withUTF8 { _ = fwrite($0.baseAddress, 1, $0.count, f) }
}

// Sends use MSG_NOSIGNAL; this covers every other write to a peer that has gone.
signal(SIGPIPE, SIG_IGN)
let args = Array(CommandLine.arguments.dropFirst())
switch args.first {
case "serve":
    exit(serve(Array(args.dropFirst())))
case "loadgen":
    exit(loadgen(Array(args.dropFirst())))
case "store":
    exit(store(Array(args.dropFirst())))
case nil, "help", "--help", "-h":
    print(usage, terminator: "")
default:
    printError("fastpilot: unknown command \(args[0])\n\n\(usage)")
    exit(2)
}
