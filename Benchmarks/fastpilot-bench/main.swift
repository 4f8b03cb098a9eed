import FastPush
#if canImport(Glibc)
import Glibc
#endif

/// fastpilot-bench [queue|all] [--short]
let args = CommandLine.arguments.dropFirst()
let short = args.contains("--short")
let which = args.first { !$0.hasPrefix("-") } ?? "all"
var report = "machine: \(Harness.machine())\n"
if which == "merge-cost" { QueueBench.mergeCost(); exit(0) }
if which == "profile-ring" { QueueBench.profileRing(); exit(0) }
if which == "queue" || which == "all" { report += QueueBench.run(short: short) }
print(report)
