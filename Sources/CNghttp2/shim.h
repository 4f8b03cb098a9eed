#ifndef FASTPILOT_CNGHTTP2_SHIM_H
#define FASTPILOT_CNGHTTP2_SHIM_H
#include <sys/types.h>
#include <sys/select.h>
#include <nghttp2/nghttp2.h>
#endif
