#ifndef FASTPILOT_CURING_SHIM_H
#define FASTPILOT_CURING_SHIM_H
// Included first so that CUring and CNghttp2 agree on fd_set (clang module clash otherwise).
#include <sys/types.h>
#include <sys/select.h>
#include <pthread.h>
#include <semaphore.h>
#include <time.h>
#include <sys/eventfd.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <netinet/tcp.h>
#include <malloc.h>
#include <liburing.h>

// glibc declares these only under _GNU_SOURCE, which Swift's Glibc module is built without.
extern int pthread_setname_np(pthread_t thread, const char *name);
extern int sem_clockwait(sem_t *sem, clockid_t clockid, const struct timespec *abstime);
extern int accept4(int fd, struct sockaddr *addr, socklen_t *addr_len, int flags);
#endif
