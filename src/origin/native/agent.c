/*
 * fdsoak's native origin agent: an LD_PRELOAD library that records, for
 * every descriptor a process creates, the return addresses of the call
 * stack that created it. fdsoak builds it with the same `cargo build`,
 * carries it inside its binary, and preloads it into a process it starts
 * with origins on (`fdsoak run --origin`); fdsoak symbolizes the addresses.
 *
 * The table is a shared-memory file, $FDSOAK_ORIGIN_DIR/<pid>.fdtab: a
 * header, then one fixed-size slot per descriptor number (up to
 * FDTAB_SLOTS). Only the thread that holds a descriptor writes its slot, so
 * no lock is needed; a per-slot sequence number (odd while written) lets
 * fdsoak read a slot consistently. The call path allocates nothing: the
 * unwinder (glibc's backtrace) is warmed up once at load time. A child
 * after fork gets a table of its own, copied from its parent's. Without
 * $FDSOAK_ORIGIN_DIR the wrappers only pass calls through.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define FDTAB_MAGIC "FDSOAKT1"
#define FDTAB_SLOTS 65536
#define FDTAB_DEPTH 48

struct fdtab_header {
    char magic[8];
    uint32_t version;
    uint32_t slots;
    uint32_t depth;
    uint32_t pid;
    uint64_t overflow; /* descriptors past the last slot: not recorded */
    uint64_t pad[4];
};

struct fdtab_slot {
    uint32_t seq;   /* odd while the slot is written */
    uint32_t depth; /* 0: no live descriptor recorded */
    uint64_t pcs[FDTAB_DEPTH];
};

#define FDTAB_BYTES (sizeof(struct fdtab_header) + (size_t)FDTAB_SLOTS * sizeof(struct fdtab_slot))

static struct fdtab_header *table;
static struct fdtab_slot *slots;
static char table_dir[512];
/* Initial-exec: the block is static TLS, so no access ever allocates. */
static __thread int inside __attribute__((tls_model("initial-exec")));

/* Raw system calls for the agent's own files, so they are never recorded. */
static int raw_open(const char *path, int flags, int mode) {
    return (int)syscall(SYS_openat, AT_FDCWD, path, flags | O_CLOEXEC, mode);
}

static int raw_close(int fd) { return (int)syscall(SYS_close, fd); }

/* "<dir>/<pid>.fdtab" without snprintf (which may allocate). */
static void table_path(char *out, size_t size, pid_t pid) {
    size_t n = strnlen(table_dir, sizeof(table_dir));
    char digits[16];
    int d = 0;
    unsigned long v = (unsigned long)pid;
    do {
        digits[d++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && d < 15);
    if (n + 1 + (size_t)d + 7 >= size) {
        out[0] = 0;
        return;
    }
    memcpy(out, table_dir, n);
    out[n++] = '/';
    while (d) out[n++] = digits[--d];
    memcpy(out + n, ".fdtab", 7);
}

/* Maps a fresh table for this process, copying `from` when given (a child after fork). */
static void map_table(const struct fdtab_header *from) {
    char path[600];
    table_path(path, sizeof(path), getpid());
    if (!path[0]) return;
    int fd = raw_open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return;
    if (syscall(SYS_ftruncate, fd, (long)FDTAB_BYTES) != 0) {
        raw_close(fd);
        return;
    }
    void *m = mmap(NULL, FDTAB_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    raw_close(fd);
    if (m == MAP_FAILED) return;
    struct fdtab_header *h = m;
    struct fdtab_slot *s = (struct fdtab_slot *)(h + 1);
    if (from) {
        const struct fdtab_slot *old = (const struct fdtab_slot *)(from + 1);
        for (size_t i = 0; i < FDTAB_SLOTS; i++)
            if (old[i].depth) s[i] = old[i];
        h->overflow = from->overflow;
    }
    memcpy(h->magic, FDTAB_MAGIC, 8);
    h->version = 1;
    h->slots = FDTAB_SLOTS;
    h->depth = FDTAB_DEPTH;
    h->pid = (uint32_t)getpid();
    struct fdtab_header *old = table;
    slots = s;
    __atomic_store_n(&table, h, __ATOMIC_RELEASE);
    if (old && old != h) munmap(old, FDTAB_BYTES);
}

static void after_fork_in_child(void) {
    if (table) map_table(table);
}

static void resolve(void);

__attribute__((constructor)) static void agent_start(void) {
    resolve();
    const char *dir = getenv("FDSOAK_ORIGIN_DIR");
    if (!dir || !*dir || strlen(dir) >= sizeof(table_dir)) return;
    memcpy(table_dir, dir, strlen(dir) + 1);
    /* The first backtrace loads the unwinder; later ones allocate nothing. */
    void *warm[4];
    inside = 1;
    backtrace(warm, 4);
    inside = 0;
    map_table(NULL);
    pthread_atfork(NULL, NULL, after_fork_in_child);
}

static void record(int fd) {
    struct fdtab_header *h = __atomic_load_n(&table, __ATOMIC_ACQUIRE);
    if (!h || fd < 0 || inside) return;
    if (fd >= FDTAB_SLOTS) {
        __atomic_add_fetch(&h->overflow, 1, __ATOMIC_RELAXED);
        return;
    }
    int saved = errno;
    inside = 1;
    struct fdtab_slot *s = &slots[fd];
    __atomic_add_fetch(&s->seq, 1, __ATOMIC_ACQ_REL);
    void *pcs[FDTAB_DEPTH + 1];
    int n = backtrace(pcs, FDTAB_DEPTH + 1);
    /* The first address is this function's caller, the wrapper: leave it out. */
    int k = 0;
    for (int i = 1; i < n && k < FDTAB_DEPTH; i++) s->pcs[k++] = (uint64_t)(uintptr_t)pcs[i];
    s->depth = (uint32_t)k;
    __atomic_add_fetch(&s->seq, 1, __ATOMIC_ACQ_REL);
    inside = 0;
    errno = saved;
}

static void forget(int fd) {
    struct fdtab_header *h = __atomic_load_n(&table, __ATOMIC_ACQUIRE);
    if (!h || fd < 0 || fd >= FDTAB_SLOTS) return;
    struct fdtab_slot *s = &slots[fd];
    if (!s->depth) return;
    __atomic_add_fetch(&s->seq, 1, __ATOMIC_ACQ_REL);
    s->depth = 0;
    __atomic_add_fetch(&s->seq, 1, __ATOMIC_ACQ_REL);
}

int fcntl64(int fd, int cmd, ...);
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);

/* Every call wrapped; the real functions are looked up once, at load. */
#define AGENT_CALLS(X)                                                              \
    X(open) X(open64) X(openat) X(openat64) X(creat) X(creat64) X(fopen) X(fopen64) \
    X(__open_2) X(__open64_2) X(__openat_2) X(__openat64_2)                         \
    X(fclose) X(socket) X(socketpair) X(accept) X(accept4) X(pipe) X(pipe2) X(dup) \
    X(dup2) X(dup3) X(fcntl) X(fcntl64) X(eventfd) X(epoll_create) X(epoll_create1) \
    X(timerfd_create) X(signalfd) X(memfd_create) X(inotify_init) X(inotify_init1) X(close)
#define DECLARE(name) static __typeof__(&name) real_##name;
AGENT_CALLS(DECLARE)
#define RESOLVE(name) real_##name = (__typeof__(real_##name))dlsym(RTLD_NEXT, #name);
static void resolve(void) { AGENT_CALLS(RESOLVE) }

/* A call that comes before the agent's constructor (another library's) resolves then. */
#define REAL(name) \
    if (!real_##name) resolve()

#define WITH_MODE(flags) (((flags) & O_CREAT) || (((flags) & O_TMPFILE) == O_TMPFILE))

#define OPEN_LIKE(name)                                                  \
    int name(const char *path, int flags, ...) {                         \
        REAL(name);                     \
        int mode = 0;                                                    \
        if (WITH_MODE(flags)) {                                          \
            va_list ap;                                                  \
            va_start(ap, flags);                                         \
            mode = va_arg(ap, int);                                      \
            va_end(ap);                                                  \
        }                                                                \
        int fd = real_##name(path, flags, mode);                         \
        record(fd);                                                      \
        return fd;                                                       \
    }
OPEN_LIKE(open)
OPEN_LIKE(open64)

#define OPENAT_LIKE(name)                                                \
    int name(int dirfd, const char *path, int flags, ...) {              \
        REAL(name);                \
        int mode = 0;                                                    \
        if (WITH_MODE(flags)) {                                          \
            va_list ap;                                                  \
            va_start(ap, flags);                                         \
            mode = va_arg(ap, int);                                      \
            va_end(ap);                                                  \
        }                                                                \
        int fd = real_##name(dirfd, path, flags, mode);                  \
        record(fd);                                                      \
        return fd;                                                       \
    }
OPENAT_LIKE(openat)
OPENAT_LIKE(openat64)

/* A call that returns one new descriptor; first, what _FORTIFY_SOURCE turns
 * open() and openat() into when the flags take no mode. */
#define ONE_FD(name, params, args)                                         \
    int name params {                                                    \
        REAL(name);                                                      \
        int fd = real_##name args;                                       \
        record(fd);                                                      \
        return fd;                                                       \
    }
ONE_FD(__open_2, (const char *path, int flags), (path, flags))
ONE_FD(__open64_2, (const char *path, int flags), (path, flags))
ONE_FD(__openat_2, (int dirfd, const char *path, int flags), (dirfd, path, flags))
ONE_FD(__openat64_2, (int dirfd, const char *path, int flags), (dirfd, path, flags))

#define CREAT_LIKE(name)                                                 \
    int name(const char *path, mode_t mode) {                            \
        REAL(name);                       \
        int fd = real_##name(path, mode);                                \
        record(fd);                                                      \
        return fd;                                                       \
    }
CREAT_LIKE(creat)
CREAT_LIKE(creat64)

#define FOPEN_LIKE(name)                                                 \
    FILE *name(const char *path, const char *mode) {                     \
        REAL(name);               \
        FILE *f = real_##name(path, mode);                               \
        if (f) record(fileno(f));                                        \
        return f;                                                        \
    }
FOPEN_LIKE(fopen)
FOPEN_LIKE(fopen64)

int fclose(FILE *f) {
    REAL(fclose);
    if (f) forget(fileno(f));
    return real_fclose(f);
}

int socket(int domain, int type, int protocol) {
    REAL(socket);
    int fd = real_socket(domain, type, protocol);
    record(fd);
    return fd;
}

int socketpair(int domain, int type, int protocol, int sv[2]) {
    REAL(socketpair);
    int r = real_socketpair(domain, type, protocol, sv);
    if (r == 0) {
        record(sv[0]);
        record(sv[1]);
    }
    return r;
}

int accept(int fd, struct sockaddr *addr, socklen_t *len) {
    REAL(accept);
    int c = real_accept(fd, addr, len);
    record(c);
    return c;
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    REAL(accept4);
    int c = real_accept4(fd, addr, len, flags);
    record(c);
    return c;
}

int pipe(int fds[2]) {
    REAL(pipe);
    int r = real_pipe(fds);
    if (r == 0) {
        record(fds[0]);
        record(fds[1]);
    }
    return r;
}

int pipe2(int fds[2], int flags) {
    REAL(pipe2);
    int r = real_pipe2(fds, flags);
    if (r == 0) {
        record(fds[0]);
        record(fds[1]);
    }
    return r;
}

int dup(int fd) {
    REAL(dup);
    int n = real_dup(fd);
    record(n);
    return n;
}

int dup2(int fd, int to) {
    REAL(dup2);
    int n = real_dup2(fd, to);
    if (n >= 0 && n != fd) record(n);
    return n;
}

int dup3(int fd, int to, int flags) {
    REAL(dup3);
    int n = real_dup3(fd, to, flags);
    record(n);
    return n;
}

int fcntl(int fd, int cmd, ...) {
    REAL(fcntl);
    va_list ap;
    va_start(ap, cmd);
    /* Every fcntl argument is an int or a pointer: pass one word through. */
    void *arg = va_arg(ap, void *);
    va_end(ap);
    int r = real_fcntl(fd, cmd, arg);
    if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) record(r);
    return r;
}

int fcntl64(int fd, int cmd, ...) {
    REAL(fcntl64);
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    int r = real_fcntl64(fd, cmd, arg);
    if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) record(r);
    return r;
}

ONE_FD(eventfd, (unsigned int v, int flags), (v, flags))
ONE_FD(epoll_create, (int size), (size))
ONE_FD(epoll_create1, (int flags), (flags))
ONE_FD(timerfd_create, (int clock, int flags), (clock, flags))
ONE_FD(signalfd, (int old, const sigset_t *mask, int flags), (old, mask, flags))
ONE_FD(memfd_create, (const char *name, unsigned int flags), (name, flags))
ONE_FD(inotify_init, (void), ())
ONE_FD(inotify_init1, (int flags), (flags))

int close(int fd) {
    REAL(close);
    /* Before the close: once it is closed, another thread may be given the same number. */
    forget(fd);
    return real_close(fd);
}
