#!/usr/bin/env bash
# Runs fuzz targets one after another under libFuzzer; what `make fuzz` calls.
#   Tests/Fuzz/run-fuzz.sh BINARY SECONDS TARGET...
# Each target fuzzes a working copy of its committed corpus (Tests/Fuzz/corpus/<t>, never
# written to) in $FUZZ_OUT/corpus/<t>, which keeps what it finds between runs; crash-, leak-,
# timeout- and oom- inputs land in $FUZZ_OUT/<t>/, the full log in $FUZZ_OUT/<t>.log.
# Dictionaries: Tests/Fuzz/dict/<t>.dict (proto and request share xds.dict).
# Prints one line per target and exits non-zero if any target failed.
set -u

bin=$1
seconds=$2
shift 2
out=${FUZZ_OUT:-fuzz-artifacts}
rss_mb=${FUZZ_RSS_MB:-2048}
timeout_s=${FUZZ_TIMEOUT:-10}
extra=${FUZZ_FLAGS:-}

if [ ! -x "$bin" ]; then echo "run-fuzz: no fuzzer binary at $bin" >&2; exit 2; fi

# Swift's crash backtracer would interpose on libFuzzer's signal handling (and can hang a
# crashed run for its timeout); ASan and libFuzzer print what is needed.
export SWIFT_BACKTRACE=enable=no
# abort_on_error gives libFuzzer the input of an ASan report; leaks are checked per input.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}

failed=0
for t in "$@"; do
  seeds=Tests/Fuzz/corpus/$t
  work=$out/corpus/$t
  arts=$out/$t
  log=$out/$t.log
  if [ ! -d "$seeds" ]; then echo "run-fuzz: no corpus $seeds" >&2; failed=1; continue; fi
  mkdir -p "$work" "$arts"
  for f in "$seeds"/*; do [ -e "$work/${f##*/}" ] || cp "$f" "$work/"; done
  before=$(ls "$arts" | wc -l)
  case $t in proto|request) dict=Tests/Fuzz/dict/xds.dict ;; *) dict=Tests/Fuzz/dict/$t.dict ;; esac
  dict_flag=""
  [ -f "$dict" ] && dict_flag="-dict=$dict"

  # shellcheck disable=SC2086
  FUZZ_TARGET=$t "$bin" -max_total_time="$seconds" -rss_limit_mb="$rss_mb" -malloc_limit_mb="$rss_mb" \
    -timeout="$timeout_s" -print_final_stats=1 -artifact_prefix="$arts/" $dict_flag $extra "$work" >"$log" 2>&1
  rc=$?

  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
  status_line=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status_line")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$status_line")
  corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$status_line")
  init_cov=$(grep -E '^#[0-9]+.*INITED' "$log" | sed -n 's/.* cov: \([0-9]*\).*/\1/p' | head -1)
  new=$(( $(ls "$arts" | wc -l) - before ))
  hint=""

  if [ "$rc" -eq 0 ] && [ "$new" -eq 0 ]; then
    result=ok
  else
    failed=1
    kind=$(grep -oE 'ERROR: (libFuzzer: (deadly signal|timeout|out-of-memory[^)]*\)?|fuzz target exited)|AddressSanitizer: [a-z-]+|LeakSanitizer: [a-z ]+)' "$log" | head -1)
    art=$(ls -t "$arts" | head -1)
    result="FAILED (exit $rc${kind:+, $kind}${art:+, input $arts/$art}; log $log)"
    [ -n "$art" ] && hint="  reproduce: FUZZ_TARGET=$t $bin $arts/$art  (or: fastpilot-fuzz replay -v $t $arts/$art)"
  fi
  printf 'fuzz %-8s %6s exec/s  %9s runs in %ss  cov %s (at start %s)  ft %s  corpus %s  rss %sMB  %s\n' \
    "$t" "${eps:-?}" "${runs:-?}" "$seconds" "${cov:-?}" "${init_cov:-?}" "${ft:-?}" "${corp:-?}" "${rss:-?}" "$result"
  [ -n "$hint" ] && echo "$hint"
done
exit $failed
