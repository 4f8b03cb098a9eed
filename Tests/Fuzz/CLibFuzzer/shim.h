#ifndef FASTPILOT_CLIBFUZZER_SHIM_H
#define FASTPILOT_CLIBFUZZER_SHIM_H
#include <stddef.h>
#include <stdint.h>

// libFuzzer's driver for programs that keep their own main() (compiler-rt's
// libclang_rt.fuzzer_no_main). Only referenced by the fuzz build (-DFUZZING), which links that
// archive; a normal build never calls it, so it needs no library.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*UserCb)(const uint8_t *Data, size_t Size));

#endif
