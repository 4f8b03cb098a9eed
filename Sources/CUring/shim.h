#ifndef FASTPILOT_CURING_SHIM_H
#define FASTPILOT_CURING_SHIM_H
// Included first so that CUring and CNghttp2 agree on fd_set (clang module clash otherwise).
#include <sys/types.h>
#include <sys/select.h>
#include <liburing.h>
#endif
