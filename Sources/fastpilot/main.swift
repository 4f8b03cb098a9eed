#if canImport(Glibc)
import Glibc
#endif
import FastPush

let usage = """
    fastpilot: an xDS control plane push engine (Istio pilot-discovery's push path).

    Usage:
      fastpilot serve [flags]     serve ADS on :15010 and the admin API on :15014
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
    signal(SIGPIPE, SIG_IGN)
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
    server.stop()
    return 0
}

let args = Array(CommandLine.arguments.dropFirst())
switch args.first {
case "serve":
    exit(serve(Array(args.dropFirst())))
case nil, "help", "--help", "-h":
    print(usage, terminator: "")
default:
    printError("fastpilot: unknown command \(args[0])\n\n\(usage)")
    exit(2)
}
