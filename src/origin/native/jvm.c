/*
 * The native agent's JVM part: Java frames for the descriptors a HotSpot JVM
 * opens. Loaded as a JVMTI agent (`-agentpath` in JAVA_TOOL_OPTIONS for a JVM
 * fdsoak starts, which also has the library on LD_PRELOAD); the same library
 * object, so the open/socket/accept wrappers of agent.c call jvm_record().
 *
 * Two tables, both private mappings of named memfds that fdsoak reads through
 * /proc/PID/mem, as agent.c's:
 *
 * - "fdsoak-jframes": per descriptor number, the Java frames of the thread that
 *   made it, as AsyncGetCallTrace returns them (method id and bytecode index,
 *   innermost first). AsyncGetCallTrace is HotSpot's signal-safe walker: it
 *   takes no lock, allocates nothing, and walks from the frame anchor HotSpot
 *   sets when Java calls into native code, so it serves in any thread state the
 *   wrappers are reached in (a JNI method's, the VM's own). It is what
 *   async-profiler walks with. A thread that is not the JVM's has no frames.
 *
 * - "fdsoak-jmethods": an append-only log of every loaded class's methods, one
 *   record a class (its signature, source file, and per method its id, name
 *   and line table), written at ClassPrepare, off the descriptor call path.
 *   Method ids must exist before AsyncGetCallTrace can name a frame, so they
 *   are made then anyway (GetClassMethods), as async-profiler does. A writer
 *   reserves its record's room with one atomic add and marks it whole when
 *   written, so class loads on many threads need no lock; fdsoak reads the log
 *   from where it stopped and stops at the first record not yet whole.
 *
 * As a guest: no thread of its own, no change to garbage collection or
 * class loading beyond the two events it listens to (AsyncGetCallTrace needs
 * ClassLoad to be on), errno kept on the descriptor path. The JVMTI types are
 * declared here by their documented slot numbers, so building fdsoak needs no
 * JDK.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ---- The JNI and JVMTI ABI, as much as is used ---- */
typedef int32_t jint;
typedef void *jclass;
typedef void *jthread;
typedef void *jmethodID;
typedef struct JavaVMFns JavaVMFns;
typedef const JavaVMFns *JavaVM;
typedef void *JNIEnv;
struct JavaVMFns {
    void *reserved[3];
    void *destroy, *attach, *detach;
    jint (*GetEnv)(JavaVM *vm, void **env, jint version);
};
typedef void *const *jvmtiEnv; /* a pointer to the table of functions */
#define JVMTI_VERSION_1_2 0x30010200
#define JVMTI_ENABLE 1
#define EVENT_VM_INIT 50
#define EVENT_CLASS_LOAD 55
#define EVENT_CLASS_PREPARE 56
#define EVENT_BREAKPOINT 62
/* Slot numbers of the JVMTI functions used (the specification's, counted from 1). */
#define FN_SET_EVENT_NOTIFICATION_MODE 2
#define FN_DEALLOCATE 47
#define FN_GET_CLASS_SIGNATURE 48
#define FN_GET_SOURCE_FILE_NAME 50
#define FN_GET_CLASS_METHODS 52
#define FN_GET_METHOD_NAME 64
#define FN_GET_LINE_NUMBER_TABLE 70
#define FN_GET_LOADED_CLASSES 78
#define FN_SET_EVENT_CALLBACKS 122
#define FN_ADD_CAPABILITIES 142
#define FN_SET_BREAKPOINT 38
#define FN_GET_METHOD_LOCATION 71
#define FN_GET_STACK_TRACE 104
#define FN_GET_TAG 106
#define FN_SET_TAG 107
#define FN_GET_LOCAL_INSTANCE 155
/* JNI function slots (counted from 0). */
#define JNI_DELETE_LOCAL_REF 23
#define JNI_GET_OBJECT_CLASS 31
#define JNI_GET_FIELD_ID 94
#define JNI_GET_OBJECT_FIELD 95
#define JNI_GET_STRING_UTF_LENGTH 168
#define JNI_GET_STRING_UTF_REGION 221
#define JNI_EXCEPTION_CHECK 228
#define JNI_EXCEPTION_CLEAR 17
#define JNIFN(env, n, type) ((type)((*(void *const *const *)(env))[(n)]))
/* can_tag_objects, can_access_local_variables, can_generate_breakpoint_events: the
 * channel ledger's, to be had only while the JVM loads (bits 0, 14 and 19). */
#define LEDGER_CAPS ((1u << 0) | (1u << 14) | (1u << 19))
#define JVMTI(env, n, type) ((type)((*(env))[(n) - 1]))
/* can_get_source_file_name and can_get_line_numbers, bits 11 and 12 of the first word. */
#define CAPS_WORD0 ((1u << 11) | (1u << 12))
#define CALLBACK_SLOTS 37

typedef struct {
    int64_t start; /* the bytecode index a line starts at */
    jint line;
} LineEntry;

typedef struct {
    jint lineno; /* the bytecode index, for a Java frame; negative for a native one */
    jmethodID method;
} CallFrame;

typedef struct {
    JNIEnv *env;
    jint frames_n;
    CallFrame *frames;
} CallTrace;

typedef void (*AsgctFn)(CallTrace *, jint, void *);

/* ---- The frames table ---- */
#define JFRAMES_MAGIC "FDSOAKJ1"
#define JFRAMES_SLOTS 65536
#define JFRAMES_DEPTH 40

struct jframes_header {
    char magic[8];
    uint32_t version;
    uint32_t slots;
    uint32_t depth;
    uint32_t pid;
    uint64_t high; /* one past the highest descriptor ever recorded */
    uint32_t walker; /* 1: the JVM has AsyncGetCallTrace, so frames are recorded */
    uint32_t pad0;
    uint64_t pad[3];
};

struct jframes_slot {
    uint32_t seq; /* odd while written */
    int32_t depth;
    CallFrame frames[JFRAMES_DEPTH];
};

/* ---- The method log ---- */
#define JMETHODS_MAGIC "FDSOAKM1"
#define JMETHODS_BYTES ((size_t)64 << 20)
#define RECORD_WHOLE 0x454c4f48u /* "HOLE" read backwards: the record is written */

struct jmethods_header {
    char magic[8];
    uint64_t end;      /* where the next record goes (reserved, maybe not yet whole) */
    uint64_t capacity; /* bytes of records the mapping holds */
    uint64_t dropped;  /* classes not logged: the log was full */
    uint64_t pad[4];
};

static JavaVM *java_vm;
static jvmtiEnv *jvmti;
static AsgctFn asgct;
static struct jframes_header *jframes;
static struct jframes_slot *jslots;
static struct jmethods_header *jmethods;

/* A private mapping of a fresh memfd named `name` (its descriptor closed at once), or
 * NULL; also node.c's. */
__attribute__((visibility("hidden"))) void *map_named(const char *name, size_t bytes) {
    int fd = (int)syscall(SYS_memfd_create, name, 1 /* MFD_CLOEXEC */);
    if (fd < 0) return NULL;
    if (syscall(SYS_ftruncate, fd, (long)bytes) != 0) {
        syscall(SYS_close, fd);
        return NULL;
    }
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    syscall(SYS_close, fd);
    return m == MAP_FAILED ? NULL : m;
}

/* The slot of a site table (`slots` slots of `size` bytes, each starting with its
 * uint64_t hash, 0 while empty) that holds `hash`, by linear probing from it. An empty
 * slot on the way is claimed by compare-and-swap, and then `*fresh` is set: the caller
 * fills it and marks it ready. -1 when the table is full. Shared with node.c. */
__attribute__((visibility("hidden"))) int64_t site_claim(void *table, size_t size, uint32_t slots, uint64_t hash, int *fresh) {
    *fresh = 0;
    for (uint32_t k = 0; k < slots; k++) {
        uint32_t i = (uint32_t)((hash + k) % slots);
        uint64_t *at = (uint64_t *)((char *)table + (size_t)i * size);
        uint64_t seen = __atomic_load_n(at, __ATOMIC_ACQUIRE);
        if (seen == 0) {
            uint64_t expected = 0;
            if (__atomic_compare_exchange_n(at, &expected, hash, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                *fresh = 1;
                return i;
            }
            seen = expected;
        }
        if (seen == hash) return i;
    }
    return -1;
}

/* Called by agent.c's record() for every descriptor made, with errno already saved. */
__attribute__((visibility("hidden"))) void jvm_record(int fd) {
    struct jframes_header *h = __atomic_load_n(&jframes, __ATOMIC_ACQUIRE);
    if (!h || fd < 0 || fd >= JFRAMES_SLOTS || h->pid != (uint32_t)syscall(SYS_getpid)) return;
    struct jframes_slot *s = &jslots[fd];
    __atomic_add_fetch(&s->seq, 1, __ATOMIC_ACQ_REL);
    s->depth = 0;
    JNIEnv *env = NULL;
    if (asgct && java_vm && (*java_vm)->GetEnv(java_vm, (void **)&env, 0x00010006) == 0 && env) {
        /* Never read for the states the wrappers are reached in (native, VM): the walk
         * starts at the frame anchor. Zeroed, it is a context that names no frame. */
        char context[1024];
        memset(context, 0, sizeof context);
        CallTrace trace = {env, 0, s->frames};
        asgct(&trace, JFRAMES_DEPTH, context);
        s->depth = trace.frames_n > 0 ? trace.frames_n : 0;
    }
    __atomic_add_fetch(&s->seq, 1, __ATOMIC_ACQ_REL);
    uint64_t past = (uint64_t)fd + 1, high = __atomic_load_n(&h->high, __ATOMIC_RELAXED);
    while (high < past && !__atomic_compare_exchange_n(&h->high, &high, past, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

/* Called by agent.c when a descriptor is closed. */
__attribute__((visibility("hidden"))) void jvm_forget(int fd) {
    struct jframes_header *h = __atomic_load_n(&jframes, __ATOMIC_ACQUIRE);
    if (!h || fd < 0 || fd >= JFRAMES_SLOTS || !jslots[fd].depth) return;
    if (h->pid != (uint32_t)syscall(SYS_getpid)) return;
    struct jframes_slot *s = &jslots[fd];
    __atomic_add_fetch(&s->seq, 1, __ATOMIC_ACQ_REL);
    s->depth = 0;
    __atomic_add_fetch(&s->seq, 1, __ATOMIC_ACQ_REL);
}

/* ---- Logging a class's methods (at ClassPrepare; off the descriptor path) ---- */

struct buf {
    unsigned char *p;
    size_t len, cap;
    int failed;
};

static void put(struct buf *b, const void *data, size_t n) {
    if (b->failed) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + n) cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void put_u16(struct buf *b, uint32_t v) {
    uint16_t x = v > 0xffff ? 0xffff : (uint16_t)v;
    put(b, &x, 2);
}

static void put_str(struct buf *b, const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n > 0xffff) n = 0xffff;
    put_u16(b, (uint32_t)n);
    put(b, s, n);
}

static void dealloc(void *p) {
    if (p) JVMTI(jvmti, FN_DEALLOCATE, jint (*)(jvmtiEnv *, void *))(jvmti, p);
}

/* One method: id, name, line table (bytecode index, line) pairs. */
static void put_method(struct buf *b, jmethodID m) {
    uint64_t id = (uint64_t)(uintptr_t)m;
    put(b, &id, 8);
    char *name = NULL;
    JVMTI(jvmti, FN_GET_METHOD_NAME, jint (*)(jvmtiEnv *, jmethodID, char **, char **, char **))(jvmti, m, &name, NULL, NULL);
    put_str(b, name);
    dealloc(name);
    jint n = 0;
    LineEntry *lines = NULL;
    if (JVMTI(jvmti, FN_GET_LINE_NUMBER_TABLE, jint (*)(jvmtiEnv *, jmethodID, jint *, LineEntry **))(jvmti, m, &n, &lines) != 0) n = 0;
    if (n > 0xffff) n = 0xffff;
    put_u16(b, (uint32_t)n);
    for (jint i = 0; i < n; i++) {
        uint32_t pair[2] = {(uint32_t)lines[i].start, (uint32_t)lines[i].line};
        put(b, pair, 8);
    }
    dealloc(lines);
}

/* Appends one record to the log: room reserved with one atomic add, marked whole last. */
static void append(const struct buf *b) {
    struct jmethods_header *h = jmethods;
    uint32_t len = (uint32_t)((8 + b->len + 7) & ~(size_t)7);
    uint64_t at = __atomic_fetch_add(&h->end, len, __ATOMIC_ACQ_REL);
    if (at + len > h->capacity) {
        /* Never un-reserved: the reader stops at the capacity. */
        __atomic_add_fetch(&h->dropped, 1, __ATOMIC_RELAXED);
        return;
    }
    unsigned char *rec = (unsigned char *)(h + 1) + at;
    memcpy(rec, &len, 4);
    memcpy(rec + 8, b->p, b->len);
    __atomic_store_n((uint32_t *)(rec + 4), RECORD_WHOLE, __ATOMIC_RELEASE);
}

static void log_class(jclass klass) {
    if (!jmethods) return;
    jint count = 0;
    jmethodID *methods = NULL;
    /* Unprepared classes (and arrays' and primitives') have none to give: nothing to log. */
    if (JVMTI(jvmti, FN_GET_CLASS_METHODS, jint (*)(jvmtiEnv *, jclass, jint *, jmethodID **))(jvmti, klass, &count, &methods) != 0) return;
    if (count <= 0) {
        dealloc(methods);
        return;
    }
    struct buf b = {0};
    char *sig = NULL, *file = NULL;
    JVMTI(jvmti, FN_GET_CLASS_SIGNATURE, jint (*)(jvmtiEnv *, jclass, char **, char **))(jvmti, klass, &sig, NULL);
    JVMTI(jvmti, FN_GET_SOURCE_FILE_NAME, jint (*)(jvmtiEnv *, jclass, char **))(jvmti, klass, &file);
    put_str(&b, sig);
    put_str(&b, file);
    dealloc(sig);
    dealloc(file);
    uint32_t n = (uint32_t)count;
    put(&b, &n, 4);
    for (jint i = 0; i < count; i++) put_method(&b, methods[i]);
    dealloc(methods);
    if (!b.failed) append(&b);
    free(b.p);
}

__attribute__((visibility("hidden"))) void ledger_class(jclass klass, const char *signature);
__attribute__((visibility("hidden"))) void ledger_start(void);
static void on_breakpoint(jvmtiEnv *env, JNIEnv *jni, jthread thread, jmethodID method, int64_t location);

static void on_class_prepare(jvmtiEnv *env, JNIEnv *jni, jthread thread, jclass klass) {
    (void)env, (void)jni, (void)thread;
    int saved = errno;
    log_class(klass);
    char *sig = NULL;
    JVMTI(jvmti, FN_GET_CLASS_SIGNATURE, jint (*)(jvmtiEnv *, jclass, char **, char **))(jvmti, klass, &sig, NULL);
    if (sig) ledger_class(klass, sig);
    dealloc(sig);
    errno = saved;
}

/* AsyncGetCallTrace names nothing unless ClassLoad is on; it has nothing to do here. */
static void on_class_load(jvmtiEnv *env, JNIEnv *jni, jthread thread, jclass klass) {
    (void)env, (void)jni, (void)thread, (void)klass;
}

/* The classes loaded before the agent listened (the VM's first ones, or all of them
 * in a JVM attached to). */
static void log_loaded_classes(void) {
    jint count = 0;
    jclass *classes = NULL;
    if (JVMTI(jvmti, FN_GET_LOADED_CLASSES, jint (*)(jvmtiEnv *, jint *, jclass **))(jvmti, &count, &classes) != 0) return;
    for (jint i = 0; i < count; i++) log_class(classes[i]);
    dealloc(classes);
}

static void on_vm_init(jvmtiEnv *env, JNIEnv *jni, jthread thread) {
    (void)env, (void)jni, (void)thread;
    int saved = errno;
    log_loaded_classes();
    errno = saved;
}

/* Sets the agent up in `vm`; `live`: the VM is already running (attached to). */
static jint start(JavaVM *vm, int live) {
    if (jframes) return 0; /* loaded twice: once is enough */
    if ((*vm)->GetEnv(vm, (void **)&jvmti, JVMTI_VERSION_1_2) != 0 || !jvmti) return 0;
    uint32_t caps[4] = {CAPS_WORD0, 0, 0, 0};
    JVMTI(jvmti, FN_ADD_CAPABILITIES, jint (*)(jvmtiEnv *, const void *))(jvmti, caps);
    void *callbacks[CALLBACK_SLOTS] = {0};
    callbacks[EVENT_VM_INIT - 50] = (void *)on_vm_init;
    callbacks[EVENT_CLASS_LOAD - 50] = (void *)on_class_load;
    callbacks[EVENT_CLASS_PREPARE - 50] = (void *)on_class_prepare;
    callbacks[EVENT_BREAKPOINT - 50] = (void *)on_breakpoint;
    JVMTI(jvmti, FN_SET_EVENT_CALLBACKS, jint (*)(jvmtiEnv *, const void *, jint))(jvmti, callbacks, (jint)sizeof callbacks);
    jmethods = map_named("fdsoak-jmethods", sizeof(struct jmethods_header) + JMETHODS_BYTES);
    if (jmethods) {
        memcpy(jmethods->magic, JMETHODS_MAGIC, 8);
        jmethods->capacity = JMETHODS_BYTES;
    }
    if (!live) ledger_start();
    typedef jint (*Mode)(jvmtiEnv *, jint, jint, jthread, ...);
    Mode mode = JVMTI(jvmti, FN_SET_EVENT_NOTIFICATION_MODE, Mode);
    mode(jvmti, JVMTI_ENABLE, EVENT_CLASS_LOAD, NULL);
    mode(jvmti, JVMTI_ENABLE, EVENT_CLASS_PREPARE, NULL);
    if (live)
        log_loaded_classes();
    else
        mode(jvmti, JVMTI_ENABLE, EVENT_VM_INIT, NULL);
    asgct = (AsgctFn)dlsym(RTLD_DEFAULT, "AsyncGetCallTrace");
    java_vm = vm;
    struct jframes_header *h = map_named("fdsoak-jframes", sizeof *h + (size_t)JFRAMES_SLOTS * sizeof(struct jframes_slot));
    if (!h) return 0;
    memcpy(h->magic, JFRAMES_MAGIC, 8);
    h->version = 1;
    h->slots = JFRAMES_SLOTS;
    h->depth = JFRAMES_DEPTH;
    h->pid = (uint32_t)syscall(SYS_getpid);
    h->walker = asgct != NULL;
    jslots = (struct jframes_slot *)(h + 1);
    __atomic_store_n(&jframes, h, __ATOMIC_RELEASE);
    return 0;
}

/* A child after fork owns its copy: its descriptors are its own from here. */
__attribute__((visibility("hidden"))) void jvm_after_fork_in_child(void) {
    struct jframes_header *h = __atomic_load_n(&jframes, __ATOMIC_ACQUIRE);
    if (h) h->pid = (uint32_t)syscall(SYS_getpid);
}

/* Without $FDSOAK_ORIGIN_DIR the agent does nothing, as the wrappers do. */
static int wanted(void) {
    const char *dir = getenv("FDSOAK_ORIGIN_DIR");
    return dir && *dir;
}

jint Agent_OnLoad(JavaVM *vm, char *options, void *reserved) {
    (void)options, (void)reserved;
    return wanted() ? start(vm, 0) : 0;
}

__attribute__((visibility("hidden"))) int agent_attach(void);

/* Loaded into a running JVM by fdsoak's own HotSpot attach: the wrappers are put in
 * the path of the JDK's calls first (agent.c), then the JVM part starts, logging the
 * classes already loaded. A non-zero return tells fdsoak it failed. */
jint Agent_OnAttach(JavaVM *vm, char *options, void *reserved) {
    (void)options, (void)reserved;
    if (agent_attach() != 0) return 1;
    return start(vm, 1);
}


/* ---- The channel ledger: where each grpc-java ManagedChannel was made, and whether it
 * was shut down ----
 *
 * grpc-java opens a channel's sockets on its own threads (the name resolver's executor,
 * Netty's event loop), so the socket's stack names no line of the program. So, when
 * io.grpc.internal.ManagedChannelImpl is prepared, a breakpoint goes on the last
 * instruction of its constructor and on the first of shutdown() and shutdownNow(). At the
 * first, the stack of the thread building the channel is its site: the site's count goes
 * up and the channel is tagged with it; at the others, the tagged channel's site counts
 * one closed (once per channel). Sites live in a table of fixed slots in a memfd
 * ("fdsoak-jchannels"), claimed by compare-and-swap on their stack's hash. */
#define JCHAN_MAGIC "FDSOAKC1"
#define JCHAN_SITES 256
#define JCHAN_DEPTH 24
#define JCHAN_TARGET 128
#define CLOSED_TAG ((int64_t)1 << 40)

typedef struct {
    jmethodID method;
    int64_t location;
} FrameInfo;

struct jchan_site {
    uint64_t hash; /* 0: free */
    uint32_t ready; /* 1 once its stack and target are written */
    uint32_t depth;
    uint64_t created, closed;
    FrameInfo frames[JCHAN_DEPTH];
    char target[JCHAN_TARGET];
};

struct jchan_header {
    char magic[8];
    uint32_t version, sites, depth, target;
    uint64_t full; /* channels whose site found no free slot */
    uint64_t pad[4];
};

static struct jchan_header *jchan;
static struct jchan_site *jsites;
static jmethodID channel_init, channel_shutdown[2];

static void ledger_target(JNIEnv *jni, void *channel, char *out) {
    typedef void *(*ObjectClass)(JNIEnv *, void *);
    typedef void *(*FieldID)(JNIEnv *, void *, const char *, const char *);
    typedef void *(*ObjectField)(JNIEnv *, void *, void *);
    typedef void (*UtfRegion)(JNIEnv *, void *, jint, jint, char *);
    typedef void (*DeleteRef)(JNIEnv *, void *);
    typedef unsigned char (*Check)(JNIEnv *);
    typedef void (*Clear)(JNIEnv *);
    out[0] = 0;
    void *klass = JNIFN(jni, JNI_GET_OBJECT_CLASS, ObjectClass)(jni, channel);
    void *field = klass ? JNIFN(jni, JNI_GET_FIELD_ID, FieldID)(jni, klass, "target", "Ljava/lang/String;") : NULL;
    if (JNIFN(jni, JNI_EXCEPTION_CHECK, Check)(jni)) JNIFN(jni, JNI_EXCEPTION_CLEAR, Clear)(jni);
    void *target = field ? JNIFN(jni, JNI_GET_OBJECT_FIELD, ObjectField)(jni, channel, field) : NULL;
    if (target) {
        /* Whole characters only: the length in UTF-16 units, cut to what fits. */
        typedef jint (*Length)(JNIEnv *, void *);
        jint chars = JNIFN(jni, 164, Length)(jni, target);
        if (chars > JCHAN_TARGET / 4) chars = JCHAN_TARGET / 4;
        JNIFN(jni, JNI_GET_STRING_UTF_REGION, UtfRegion)(jni, target, 0, chars, out);
        out[JCHAN_TARGET - 1] = 0;
        JNIFN(jni, JNI_DELETE_LOCAL_REF, DeleteRef)(jni, target);
    }
    if (klass) JNIFN(jni, JNI_DELETE_LOCAL_REF, DeleteRef)(jni, klass);
}

static void ledger_made(JNIEnv *jni, jthread thread, void *channel) {
    FrameInfo frames[JCHAN_DEPTH];
    jint n = 0;
    if (JVMTI(jvmti, FN_GET_STACK_TRACE, jint (*)(jvmtiEnv *, jthread, jint, jint, FrameInfo *, jint *))(jvmti, thread, 0, JCHAN_DEPTH, frames, &n) != 0 || n <= 0) return;
    uint64_t hash = 1469598103934665603ull;
    for (jint i = 0; i < n; i++) {
        hash = (hash ^ (uint64_t)(uintptr_t)frames[i].method) * 1099511628211ull;
        hash = (hash ^ (uint64_t)frames[i].location) * 1099511628211ull;
    }
    if (!hash) hash = 1;
    int fresh = 0;
    int64_t slot = site_claim(jsites, sizeof *jsites, JCHAN_SITES, hash, &fresh);
    if (slot < 0) {
        __atomic_add_fetch(&jchan->full, 1, __ATOMIC_RELAXED);
        return;
    }
    struct jchan_site *s = &jsites[slot];
    if (fresh) {
        memcpy(s->frames, frames, (size_t)n * sizeof *frames);
        s->depth = (uint32_t)n;
        ledger_target(jni, channel, s->target);
        __atomic_store_n(&s->ready, 1, __ATOMIC_RELEASE);
    }
    __atomic_add_fetch(&s->created, 1, __ATOMIC_RELAXED);
    JVMTI(jvmti, FN_SET_TAG, jint (*)(jvmtiEnv *, void *, int64_t))(jvmti, channel, slot + 1);
}

static void ledger_closed(void *channel) {
    int64_t tag = 0;
    if (JVMTI(jvmti, FN_GET_TAG, jint (*)(jvmtiEnv *, void *, int64_t *))(jvmti, channel, &tag) != 0) return;
    if (tag <= 0 || tag & CLOSED_TAG || tag > JCHAN_SITES) return;
    JVMTI(jvmti, FN_SET_TAG, jint (*)(jvmtiEnv *, void *, int64_t))(jvmti, channel, tag | CLOSED_TAG);
    __atomic_add_fetch(&jsites[tag - 1].closed, 1, __ATOMIC_RELAXED);
}

static void on_breakpoint(jvmtiEnv *env, JNIEnv *jni, jthread thread, jmethodID method, int64_t location) {
    (void)env, (void)location;
    int saved = errno;
    void *channel = NULL;
    if (JVMTI(jvmti, FN_GET_LOCAL_INSTANCE, jint (*)(jvmtiEnv *, jthread, jint, void **))(jvmti, thread, 0, &channel) == 0 && channel) {
        if (method == channel_init)
            ledger_made(jni, thread, channel);
        else
            ledger_closed(channel);
        typedef void (*DeleteRef)(JNIEnv *, void *);
        JNIFN(jni, JNI_DELETE_LOCAL_REF, DeleteRef)(jni, channel);
    }
    errno = saved;
}

/* At ClassPrepare: the breakpoints, when the class is grpc-java's channel. */
__attribute__((visibility("hidden"))) void ledger_class(jclass klass, const char *signature) {
    if (!jchan || strcmp(signature, "Lio/grpc/internal/ManagedChannelImpl;") != 0) return;
    jint count = 0;
    jmethodID *methods = NULL;
    if (JVMTI(jvmti, FN_GET_CLASS_METHODS, jint (*)(jvmtiEnv *, jclass, jint *, jmethodID **))(jvmti, klass, &count, &methods) != 0) return;
    typedef jint (*SetBreakpoint)(jvmtiEnv *, jmethodID, int64_t);
    for (jint i = 0; i < count; i++) {
        char *name = NULL;
        JVMTI(jvmti, FN_GET_METHOD_NAME, jint (*)(jvmtiEnv *, jmethodID, char **, char **, char **))(jvmti, methods[i], &name, NULL, NULL);
        if (name && strcmp(name, "<init>") == 0 && !channel_init) {
            int64_t start = 0, end = 0;
            if (JVMTI(jvmti, FN_GET_METHOD_LOCATION, jint (*)(jvmtiEnv *, jmethodID, int64_t *, int64_t *))(jvmti, methods[i], &start, &end) == 0 &&
                JVMTI(jvmti, FN_SET_BREAKPOINT, SetBreakpoint)(jvmti, methods[i], end) == 0)
                channel_init = methods[i];
        } else if (name && (strcmp(name, "shutdown") == 0 || strcmp(name, "shutdownNow") == 0)) {
            if (JVMTI(jvmti, FN_SET_BREAKPOINT, SetBreakpoint)(jvmti, methods[i], 0) == 0) {
                if (!channel_shutdown[0]) channel_shutdown[0] = methods[i]; else channel_shutdown[1] = methods[i];
            }
        }
        dealloc(name);
    }
    dealloc(methods);
}

/* At load: the ledger's capabilities (only to be had then) and its table. */
__attribute__((visibility("hidden"))) void ledger_start(void) {
    uint32_t caps[4] = {LEDGER_CAPS, 0, 0, 0};
    if (JVMTI(jvmti, FN_ADD_CAPABILITIES, jint (*)(jvmtiEnv *, const void *))(jvmti, caps) != 0) return;
    struct jchan_header *h = map_named("fdsoak-jchannels", sizeof *h + (size_t)JCHAN_SITES * sizeof(struct jchan_site));
    if (!h) return;
    memcpy(h->magic, JCHAN_MAGIC, 8);
    h->version = 1;
    h->sites = JCHAN_SITES;
    h->depth = JCHAN_DEPTH;
    h->target = JCHAN_TARGET;
    jsites = (struct jchan_site *)(h + 1);
    jchan = h;
    typedef jint (*Mode)(jvmtiEnv *, jint, jint, jthread, ...);
    JVMTI(jvmti, FN_SET_EVENT_NOTIFICATION_MODE, Mode)(jvmti, JVMTI_ENABLE, EVENT_BREAKPOINT, NULL);
}
