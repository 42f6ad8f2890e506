/*
 * fdsoak's native origin agent: an LD_PRELOAD library that records, for
 * every descriptor a process creates, the return addresses of the call
 * stack that created it. fdsoak builds it with the same `cargo build`,
 * carries it inside its binary, and preloads it into a process it starts
 * with origins on (`fdsoak run --origin`); fdsoak symbolizes the addresses.
 *
 * The table lives in the process's own memory: a private mapping of a memfd
 * named "fdsoak-fdtab" (the descriptor is closed once mapped), which fdsoak
 * finds in /proc/PID/maps and reads through /proc/PID/mem, only the slots of
 * live descriptors. A header, then one fixed-size slot per descriptor number
 * (up to FDTAB_SLOTS). Only the thread that holds a descriptor writes its
 * slot, so no lock is needed; a per-slot sequence number (odd while written)
 * lets fdsoak keep only slots it read whole. Being private, the mapping is
 * copied into a child after fork page by page, and only the pages the child
 * writes (the kernel's copy-on-write): a child that calls exec at once
 * copies nothing. A vfork child, which shares its parent's memory, writes
 * nothing: every write checks that the caller is the table's owner.
 *
 * As a guest: no allocation and no lock on the call path (the unwinder,
 * glibc's backtrace, is warmed up once at load time), errno as the real call
 * left it, and closes seen on every route glibc exports (close, fclose,
 * close_range, closefrom, dup2/dup3 over a live number; exec and exit take
 * the table with them). Without $FDSOAK_ORIGIN_DIR the wrappers only pass
 * calls through.
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

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#endif

#define FDTAB_MAGIC "FDSOAKT2"
#define FDTAB_SLOTS 65536
#define FDTAB_DEPTH 48

struct fdtab_header {
    char magic[8];
    uint32_t version;
    uint32_t slots;
    uint32_t depth;
    uint32_t pid;      /* the owner: the process whose descriptors these are */
    uint64_t overflow; /* descriptors past the last slot: not recorded */
    uint64_t high;     /* one past the highest descriptor ever recorded */
    uint64_t paused;   /* set by fdsoak when a run that attached to this process ends */
    uint64_t pad[2];
};

struct fdtab_slot {
    uint32_t seq;   /* odd while the slot is written */
    uint32_t depth; /* 0: no live descriptor recorded */
    uint64_t pcs[FDTAB_DEPTH];
};

#define FDTAB_BYTES (sizeof(struct fdtab_header) + (size_t)FDTAB_SLOTS * sizeof(struct fdtab_slot))

static struct fdtab_header *table;
static struct fdtab_slot *slots;
/* Initial-exec: the block is static TLS, so no access ever allocates. */
static __thread int inside __attribute__((tls_model("initial-exec")));

/* jvm.c: the Java frames of the same descriptors, in a JVM that loaded this library as its agent. */
__attribute__((visibility("hidden"))) void jvm_record(int fd);
__attribute__((visibility("hidden"))) void jvm_forget(int fd);
__attribute__((visibility("hidden"))) void jvm_after_fork_in_child(void);

static uint32_t own_pid(void) { return (uint32_t)syscall(SYS_getpid); }

/* Maps this process's table: a private mapping of a named memfd, found by fdsoak in
 * /proc/PID/maps. Raw system calls, so the agent's own descriptor is never recorded. */
static void map_table(void) {
    int fd = (int)syscall(SYS_memfd_create, "fdsoak-fdtab", MFD_CLOEXEC);
    if (fd < 0) return;
    if (syscall(SYS_ftruncate, fd, (long)FDTAB_BYTES) != 0) {
        syscall(SYS_close, fd);
        return;
    }
    void *m = mmap(NULL, FDTAB_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    syscall(SYS_close, fd);
    if (m == MAP_FAILED) return;
    struct fdtab_header *h = m;
    memcpy(h->magic, FDTAB_MAGIC, 8);
    h->version = 2;
    h->slots = FDTAB_SLOTS;
    h->depth = FDTAB_DEPTH;
    h->pid = own_pid();
    slots = (struct fdtab_slot *)(h + 1);
    __atomic_store_n(&table, h, __ATOMIC_RELEASE);
}

/* A child after fork keeps its parent's slots (it holds the same descriptors) in its
 * own copy-on-write pages; it only becomes their owner. */
static void after_fork_in_child(void) {
    struct fdtab_header *h = __atomic_load_n(&table, __ATOMIC_ACQUIRE);
    if (h) h->pid = own_pid();
    jvm_after_fork_in_child();
}

static void resolve(void);


/* The unwinder warmed up (the first backtrace loads it; later ones allocate nothing),
 * the table mapped, and a forked child made its copy's owner. */
static void set_up(void) {
    void *warm[4];
    inside = 1;
    backtrace(warm, 4);
    inside = 0;
    map_table();
    pthread_atfork(NULL, NULL, after_fork_in_child);
}

__attribute__((constructor)) static void agent_start(void) {
    resolve();
    const char *dir = getenv("FDSOAK_ORIGIN_DIR");
    if (!dir || !*dir) return;
    int saved = errno;
    set_up();
    errno = saved;
}

/* The table, if this process owns it: not in a vfork child, which shares its parent's memory. */
static struct fdtab_header *owned(void) {
    struct fdtab_header *h = __atomic_load_n(&table, __ATOMIC_ACQUIRE);
    if (!h || h->pid != own_pid()) return NULL;
    return h;
}

static void record(int fd) {
    if (fd < 0 || inside || !__atomic_load_n(&table, __ATOMIC_ACQUIRE)) return;
    int saved = errno;
    struct fdtab_header *h = owned();
    if (!h || __atomic_load_n(&h->paused, __ATOMIC_RELAXED)) return;
    if (fd >= FDTAB_SLOTS) {
        __atomic_add_fetch(&h->overflow, 1, __ATOMIC_RELAXED);
        return;
    }
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
    jvm_record(fd);
    uint64_t past = (uint64_t)fd + 1, high = __atomic_load_n(&h->high, __ATOMIC_RELAXED);
    while (high < past && !__atomic_compare_exchange_n(&h->high, &high, past, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    inside = 0;
    errno = saved;
}

static void forget_slot(struct fdtab_slot *s) {
    __atomic_add_fetch(&s->seq, 1, __ATOMIC_ACQ_REL);
    s->depth = 0;
    __atomic_add_fetch(&s->seq, 1, __ATOMIC_ACQ_REL);
}

static void forget(int fd) {
    jvm_forget(fd);
    struct fdtab_header *h = __atomic_load_n(&table, __ATOMIC_ACQUIRE);
    if (!h || fd < 0 || fd >= FDTAB_SLOTS || !slots[fd].depth || !owned()) return;
    forget_slot(&slots[fd]);
}

/* Every slot from `first` to `last` (inclusive), up to the highest ever recorded, so
 * pages no descriptor reached are never touched. */
static void forget_range(unsigned int first, unsigned int last) {
    struct fdtab_header *h = owned();
    if (!h) return;
    uint64_t end = __atomic_load_n(&h->high, __ATOMIC_RELAXED);
    if ((uint64_t)last + 1 < end) end = (uint64_t)last + 1;
    for (uint64_t fd = first; fd < end; fd++)
        if (slots[fd].depth) {
            forget_slot(&slots[fd]);
            jvm_forget((int)fd);
        }
}

/* The descriptors an SCM_RIGHTS message carried in. */
static void record_received(const struct msghdr *msg) {
    if (!msg || !msg->msg_control || msg->msg_controllen < sizeof(struct cmsghdr)) return;
    for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)msg); c; c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char *data = CMSG_DATA(c);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, data + i * sizeof(int), sizeof(int));
            record(fd);
        }
    }
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
    X(timerfd_create) X(signalfd) X(memfd_create) X(inotify_init) X(inotify_init1) X(close) \
    X(close_range) X(closefrom) X(recvmsg) X(recvmmsg)
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

/* A stream's descriptor, leaving errno alone (fileno sets it for a stream with none). */
static int stream_fd(FILE *f) {
    int saved = errno;
    int fd = fileno(f);
    errno = saved;
    return fd;
}

#define FOPEN_LIKE(name)                                                 \
    FILE *name(const char *path, const char *mode) {                     \
        REAL(name);               \
        FILE *f = real_##name(path, mode);                               \
        if (f) record(stream_fd(f));                                     \
        return f;                                                        \
    }
FOPEN_LIKE(fopen)
FOPEN_LIKE(fopen64)

int fclose(FILE *f) {
    REAL(fclose);
    if (f) forget(stream_fd(f));
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

int close_range(unsigned int first, unsigned int last, int flags) {
    REAL(close_range);
    /* CLOSE_RANGE_CLOEXEC only marks them: they stay open until an exec. */
    if (!((unsigned int)flags & CLOSE_RANGE_CLOEXEC)) forget_range(first, last);
    return real_close_range(first, last, flags);
}

void closefrom(int low) {
    REAL(closefrom);
    if (low >= 0) forget_range((unsigned int)low, ~0U);
    real_closefrom(low);
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags) {
    REAL(recvmsg);
    ssize_t r = real_recvmsg(fd, msg, flags);
    if (r >= 0) record_received(msg);
    return r;
}

int recvmmsg(int fd, struct mmsghdr *msgs, unsigned int n, int flags, struct timespec *timeout) {
    REAL(recvmmsg);
    int r = real_recvmmsg(fd, msgs, n, flags, timeout);
    for (int i = 0; i < r; i++) record_received(&msgs[i].msg_hdr);
    return r;
}

/* ---- Attached to a running process (a JVM, through jvm.c's Agent_OnAttach) ----
 *
 * Loaded with dlopen into a process that is already running, the wrappers above
 * are not in the path of any call: nothing was preloaded. So the import slots
 * (GOT entries) of every library the process has loaded, but the C library, the
 * loader and this one, are pointed at the wrappers, for exactly the calls the
 * wrappers cover. An aligned 8-byte store: a thread calling meanwhile goes to
 * the old target or the new, both of which do the call. Libraries loaded later
 * are not patched. The slots in a library's read-only-after-relocation region
 * are made writable for the store and read-only again. */
#include <elf.h>
#include <link.h>

#if defined(__x86_64__)
#define SLOT_TYPE(t) ((t) == R_X86_64_JUMP_SLOT || (t) == R_X86_64_GLOB_DAT)
#elif defined(__aarch64__)
#define SLOT_TYPE(t) ((t) == R_AARCH64_JUMP_SLOT || (t) == R_AARCH64_GLOB_DAT)
#else
#define SLOT_TYPE(t) 0
#endif

#define PATCHABLE(name) {#name, (void **)&real_##name},
static const struct {
    const char *name;
    void **real;
} patchable[] = {AGENT_CALLS(PATCHABLE)};
#define PATCHABLE_N (sizeof patchable / sizeof patchable[0])

static void *wrappers[PATCHABLE_N];
static uintptr_t self_base;

static int patchable_index(const char *name) {
    for (size_t i = 0; i < PATCHABLE_N; i++)
        if (wrappers[i] && strcmp(patchable[i].name, name) == 0) return (int)i;
    return -1;
}

static int skipped(const char *name) {
    static const char *const own[] = {"/libc.so", "/ld-linux", "linux-vdso", "/libdl.so", "/libpthread.so", "/ld64.so"};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (strstr(name, own[i])) return 1;
    return 0;
}

static void store_slot(uintptr_t slot, void *to, uintptr_t relro_start, uintptr_t relro_end) {
    if (*(void **)slot == to) return;
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t start = slot & ~((uintptr_t)page - 1);
    int relro = slot >= relro_start && slot < relro_end;
    if (relro && mprotect((void *)start, (size_t)page, PROT_READ | PROT_WRITE) != 0) return;
    __atomic_store_n((void **)slot, to, __ATOMIC_RELEASE);
    if (relro) mprotect((void *)start, (size_t)page, PROT_READ);
}

static void patch_relocs(uintptr_t base, const ElfW(Rela) * r, size_t bytes, const ElfW(Sym) * symtab,
                         const char *strtab, uintptr_t relro_start, uintptr_t relro_end) {
    for (size_t i = 0; i < bytes / sizeof *r; i++) {
        if (!SLOT_TYPE(ELF64_R_TYPE(r[i].r_info))) continue;
        size_t sym = ELF64_R_SYM(r[i].r_info);
        if (!sym) continue;
        int k = patchable_index(strtab + symtab[sym].st_name);
        if (k >= 0) store_slot(base + r[i].r_offset, wrappers[k], relro_start, relro_end);
    }
}

static int patch_object(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size, (void)data;
    const char *name = info->dlpi_name ? info->dlpi_name : "";
    uintptr_t base = info->dlpi_addr;
    if (base == self_base || skipped(name)) return 0;
    const ElfW(Dyn) *dyn = NULL;
    uintptr_t relro_start = 0, relro_end = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        if (p->p_type == PT_DYNAMIC) dyn = (const ElfW(Dyn) *)(base + p->p_vaddr);
        if (p->p_type == PT_GNU_RELRO) {
            relro_start = base + p->p_vaddr;
            relro_end = relro_start + p->p_memsz;
        }
    }
    if (!dyn) return 0;
    /* The loader has usually made these addresses absolute; where not, they are offsets. */
#define ABSOLUTE(v) ((uintptr_t)(v) < base ? base + (uintptr_t)(v) : (uintptr_t)(v))
    const ElfW(Sym) *symtab = NULL;
    const char *strtab = NULL;
    const ElfW(Rela) *jmprel = NULL, *rela = NULL;
    size_t jmprel_bytes = 0, rela_bytes = 0;
    for (const ElfW(Dyn) *d = dyn; d->d_tag != DT_NULL; d++) {
        switch (d->d_tag) {
        case DT_SYMTAB: symtab = (const ElfW(Sym) *)ABSOLUTE(d->d_un.d_ptr); break;
        case DT_STRTAB: strtab = (const char *)ABSOLUTE(d->d_un.d_ptr); break;
        case DT_JMPREL: jmprel = (const ElfW(Rela) *)ABSOLUTE(d->d_un.d_ptr); break;
        case DT_PLTRELSZ: jmprel_bytes = d->d_un.d_val; break;
        case DT_RELA: rela = (const ElfW(Rela) *)ABSOLUTE(d->d_un.d_ptr); break;
        case DT_RELASZ: rela_bytes = d->d_un.d_val; break;
        }
    }
#undef ABSOLUTE
    if (!symtab || !strtab) return 0;
    if (jmprel) patch_relocs(base, jmprel, jmprel_bytes, symtab, strtab, relro_start, relro_end);
    if (rela) patch_relocs(base, rela, rela_bytes, symtab, strtab, relro_start, relro_end);
    return 0;
}

/* Called by jvm.c's Agent_OnAttach: maps the table (if this process has none yet) and
 * points the loaded libraries' imports of the wrapped calls at the wrappers. Returns 0
 * when the wrappers are in place. */
__attribute__((visibility("hidden"))) int agent_attach(void) {
    int saved = errno;
    resolve();
    Dl_info self;
    if (!dladdr((void *)agent_attach, &self) || !self.dli_fname) return -1;
    void *handle = dlopen(self.dli_fname, RTLD_NOLOAD | RTLD_LAZY);
    if (!handle) return -1;
    self_base = (uintptr_t)self.dli_fbase;
    for (size_t i = 0; i < PATCHABLE_N; i++) {
        void *w = dlsym(handle, patchable[i].name);
        Dl_info at;
        /* Only a wrapper of this library's, over a real call that was found. */
        if (w && *patchable[i].real && *patchable[i].real != w && dladdr(w, &at) && at.dli_fbase == self.dli_fbase)
            wrappers[i] = w;
    }
    if (!__atomic_load_n(&table, __ATOMIC_ACQUIRE)) set_up();
    if (!__atomic_load_n(&table, __ATOMIC_ACQUIRE)) return -1;
    dl_iterate_phdr(patch_object, NULL);
    errno = saved;
    return 0;
}
