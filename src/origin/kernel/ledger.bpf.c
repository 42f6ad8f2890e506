// SPDX-License-Identifier: MIT OR GPL-2.0-only
//
// fdsoak's kernel ledger of descriptors: for the processes fdsoak watches
// (their thread-group IDs in `watched`), the user stack and time that made
// each live descriptor, and how many descriptors each stack made.
//
// Hooks: the raw tracepoints `sys_enter` and `sys_exit` (no tracefs needed,
// Linux 4.17+) and `sched_process_fork` / `sched_process_exit`. Which system
// call creates or closes descriptors, and how, is a table user space fills
// (`kinds`, by this machine's syscall numbers), so the program itself is
// the same on every architecture. Every program's first test is a hash
// lookup of the caller's thread group: nothing else runs for other processes.
//
// Built by `scripts/build-bpf` with clang; the object is committed beside
// this file, and a test checks that it matches. No libbpf headers: the few
// helpers and map macros are declared here.

typedef unsigned char __u8;
typedef unsigned int __u32;
typedef int __s32;
typedef unsigned long long __u64;
typedef long long __s64;

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int(*name)[val]
#define __type(name, val) typeof(val) *name

enum { MAP_HASH = 1, MAP_ARRAY = 2, MAP_STACK_TRACE = 7, MAP_RINGBUF = 27 };
enum { ANY = 0, NOEXIST = 1 };
#define USER_STACK (1ULL << 8)

static void *(*map_lookup)(void *map, const void *key) = (void *)1;
static long (*map_update)(void *map, const void *key, const void *value, __u64 flags) = (void *)2;
static long (*map_delete)(void *map, const void *key) = (void *)3;
static __u64 (*ktime_ns)(void) = (void *)5;
static __u64 (*pid_tgid)(void) = (void *)14;
static long (*stack_id)(void *ctx, void *map, __u64 flags) = (void *)27;
static long (*read_user)(void *dst, __u32 size, const void *src) = (void *)112;
static long (*read_kernel)(void *dst, __u32 size, const void *src) = (void *)113;
static void *(*ringbuf_reserve)(void *ringbuf, __u64 size, __u64 flags) = (void *)131;
static void (*ringbuf_submit)(void *data, __u64 flags) = (void *)132;
static long (*get_stack)(void *ctx, void *buf, __u32 size, __u64 flags) = (void *)67;
static long (*read_user_str)(void *dst, __u32 size, const void *src) = (void *)114;

// How a system call touches descriptors (the values of `kinds`).
enum {
    K_NONE = 0,
    K_RET = 1,        // its result is a new descriptor (open, socket, accept, dup, eventfd, ...)
    K_FCNTL = 2,      // fcntl: F_DUPFD and F_DUPFD_CLOEXEC return a new descriptor
    K_PAIR_ARG0 = 3,  // pipe, pipe2: two descriptors written at the first argument
    K_PAIR_ARG3 = 4,  // socketpair: two descriptors written at the fourth argument
    K_CLOSE = 5,      // close
    K_CLOSE_RANGE = 6, // close_range
    K_EXEC = 7         // execve, execveat: what the process made before is not its code's any more
};

// What `watched` says of a thread group.
enum { W_RECORD = 1, W_FOLLOW = 2 };

#define STACK_DEPTH 64
#define NR_SYSCALLS 1024
#define CLOSE_RANGE_MAX 1024
#define F_DUPFD 0
#define F_DUPFD_CLOEXEC 1030
#define CLOSE_RANGE_CLOEXEC 4

// Offsets in `struct pt_regs` of the first four system-call arguments, set per
// architecture by the loader (these defaults are x86_64's: di, si, dx, r10).
volatile const __u32 arg0_offset = 112;
volatile const __u32 arg1_offset = 104;
volatile const __u32 arg2_offset = 96;
volatile const __u32 arg3_offset = 56;
// Offsets of the user's instruction, stack and frame pointers (x86_64: ip, sp, bp).
volatile const __u32 ip_offset = 128;
volatile const __u32 sp_offset = 152;
volatile const __u32 fp_offset = 32;

struct fd_key {
    __u32 tgid;
    __s32 fd;
};

struct fd_made {
    __s64 stack; // id in `stacks`, or negative: no stack taken
    __u64 ns;    // CLOCK_MONOTONIC when it was made
};

struct count_key {
    __u32 tgid;
    __s32 stack;
    __u32 exec; // how many programs the process had run before this one (see `execs`)
    __u32 pad;
};

struct exec {
    __u64 ns;   // CLOCK_MONOTONIC at the last successful exec
    __u32 seen; // successful execs seen
    __u32 pad;
};

struct call {
    __u32 kind;
    __u32 pad;
    __u64 arg[4];
};

// What user space unwinds from the binaries' unwind tables (DWARF CFI) where the
// frame-pointer walk stops early: the registers and the top of the user stack
// at the event, matched to the ledger's entry by (tgid, fd, ns).
#define STACK_BYTES 65536
#define PAGE 4096
struct sample {
    __u32 tgid;
    __s32 fd;
    __u64 ns;
    __u64 ip, sp, fp;
    __u32 size; // bytes of `stack` copied, from sp up
    __u32 pad;
    __u8 stack[STACK_BYTES];
};

// Events lost, by cause: the ledger full, a stack not taken, the counts full, a
// call not followed, a sample with no room.
enum { LOST_FDS = 0, LOST_STACK = 1, LOST_COUNTS = 2, LOST_CALLS = 3, LOST_SAMPLES = 4, LOST_KINDS = 5 };

struct {
    __uint(type, MAP_HASH);
    __uint(max_entries, 1024);
    __type(key, __u32);
    __type(value, __u32);
} watched SEC(".maps");

struct {
    __uint(type, MAP_ARRAY);
    __uint(max_entries, NR_SYSCALLS);
    __type(key, __u32);
    __type(value, __u32);
} kinds SEC(".maps");

struct {
    __uint(type, MAP_HASH);
    __uint(max_entries, 16384);
    __type(key, __u64);
    __type(value, struct call);
} calls SEC(".maps");

struct {
    __uint(type, MAP_HASH);
    __uint(max_entries, 65536);
    __type(key, struct fd_key);
    __type(value, struct fd_made);
} fds SEC(".maps");

struct {
    __uint(type, MAP_STACK_TRACE);
    __uint(max_entries, 8192);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, STACK_DEPTH * sizeof(__u64));
} stacks SEC(".maps");

struct {
    __uint(type, MAP_HASH);
    __uint(max_entries, 16384);
    __type(key, struct count_key);
    __type(value, __u64);
} counts SEC(".maps");

// Per thread group: when it last replaced its program (a successful exec).
struct {
    __uint(type, MAP_HASH);
    __uint(max_entries, 1024);
    __type(key, __u32);
    __type(value, struct exec);
} execs SEC(".maps");

struct {
    __uint(type, MAP_ARRAY);
    __uint(max_entries, LOST_KINDS);
    __type(key, __u32);
    __type(value, __u64);
} lost SEC(".maps");

struct {
    __uint(type, MAP_RINGBUF);
    __uint(max_entries, 8 << 20);
} samples SEC(".maps");

struct raw_args {
    __u64 args[0];
};

// Only the field read, relocated to this kernel's layout by the loader (CO-RE).
struct task_struct {
    int tgid;
} __attribute__((preserve_access_index));

static __attribute__((always_inline)) void count_lost(__u32 cause) {
    __u64 *n = map_lookup(&lost, &cause);
    if (n)
        __sync_fetch_and_add(n, 1);
}

static __attribute__((always_inline)) __u64 arg(const void *regs, int i) {
    __u32 offset = i == 0 ? arg0_offset : i == 1 ? arg1_offset : i == 2 ? arg2_offset : arg3_offset;
    __u64 v = 0;
    read_kernel(&v, sizeof(v), (const char *)regs + offset);
    return v;
}

static __attribute__((always_inline)) __u64 reg(const void *regs, __u32 offset) {
    __u64 v = 0;
    read_kernel(&v, sizeof(v), (const char *)regs + offset);
    return v;
}

// The registers and as much of the top of the user stack as can be read (64 KiB at most).
static __attribute__((always_inline)) void sample_at(__u64 ip, __u64 sp, __u64 fp, __u32 tgid, __s32 fd, __u64 ns) {
    struct sample *s = ringbuf_reserve(&samples, sizeof(struct sample), 0);
    if (!s) {
        count_lost(LOST_SAMPLES);
        return;
    }
    s->tgid = tgid;
    s->fd = fd;
    s->ns = ns;
    s->ip = ip;
    s->sp = sp;
    s->fp = fp;
    // Page by page from sp up, to the end of the stack's mapping (or 64 KiB).
    __u32 got = 0, want = PAGE - (s->sp & (PAGE - 1));
    for (int i = 0; i <= STACK_BYTES / PAGE; i++) {
        if (got > STACK_BYTES - PAGE || want > PAGE)
            break;
        if (read_user(s->stack + got, want, (const void *)(s->sp + got)))
            break;
        got += want;
        want = PAGE;
    }
    s->size = got;
    ringbuf_submit(s, 0);
}

static __attribute__((always_inline)) void sample(const void *regs, __u32 tgid, __s32 fd, __u64 ns) {
    sample_at(reg(regs, ip_offset), reg(regs, sp_offset), reg(regs, fp_offset), tgid, fd, ns);
}

static __attribute__((always_inline)) void record(void *ctx, __u32 tgid, __s32 fd) {
    struct fd_key key = {.tgid = tgid, .fd = fd};
    struct fd_made made = {.stack = stack_id(ctx, &stacks, USER_STACK), .ns = ktime_ns()};
    if (made.stack < 0)
        count_lost(LOST_STACK);
    if (map_update(&fds, &key, &made, ANY))
        count_lost(LOST_FDS);
    sample((const void *)((struct raw_args *)ctx)->args[0], tgid, fd, made.ns);
    struct exec *e = map_lookup(&execs, &tgid);
    struct count_key ck = {.tgid = tgid, .stack = made.stack < 0 ? -1 : (__s32)made.stack, .exec = e ? e->seen : 0};
    __u64 *n = map_lookup(&counts, &ck);
    if (!n) {
        __u64 zero = 0;
        map_update(&counts, &ck, &zero, NOEXIST);
        n = map_lookup(&counts, &ck);
    }
    if (n)
        __sync_fetch_and_add(n, 1);
    else
        count_lost(LOST_COUNTS);
}

SEC("raw_tracepoint/sys_enter")
int ledger_enter(struct raw_args *ctx) {
    __u64 id = pid_tgid();
    __u32 tgid = id >> 32;
    __u32 *w = map_lookup(&watched, &tgid);
    if (!w || *w != W_RECORD)
        return 0;
    __u32 nr = ctx->args[1];
    __u32 *kind = map_lookup(&kinds, &nr);
    if (!kind || *kind == K_NONE)
        return 0;
    const void *regs = (const void *)ctx->args[0];
    if (*kind == K_CLOSE) {
        struct fd_key key = {.tgid = tgid, .fd = (__s32)arg(regs, 0)};
        map_delete(&fds, &key);
        return 0;
    }
    if (*kind == K_CLOSE_RANGE) {
        __u32 first = arg(regs, 0), last = arg(regs, 1);
        if (arg(regs, 2) & CLOSE_RANGE_CLOEXEC)
            return 0;
        for (__u32 i = 0; i < CLOSE_RANGE_MAX; i++) {
            if (first + i > last || first + i < first)
                break;
            struct fd_key key = {.tgid = tgid, .fd = (__s32)(first + i)};
            map_delete(&fds, &key);
        }
        return 0;
    }
    struct call c = {.kind = *kind};
    c.arg[0] = arg(regs, 0);
    c.arg[1] = arg(regs, 1);
    c.arg[3] = arg(regs, 3);
    if (map_update(&calls, &id, &c, ANY))
        count_lost(LOST_CALLS);
    return 0;
}

SEC("raw_tracepoint/sys_exit")
int ledger_exit(struct raw_args *ctx) {
    __u64 id = pid_tgid();
    struct call *saved = map_lookup(&calls, &id);
    if (!saved)
        return 0;
    struct call c = *saved;
    map_delete(&calls, &id);
    long ret = (long)ctx->args[1];
    if (ret < 0)
        return 0;
    __u32 tgid = id >> 32;
    if (c.kind == K_EXEC) {
        struct exec *e = map_lookup(&execs, &tgid);
        struct exec next = {.ns = ktime_ns(), .seen = e ? e->seen + 1 : 1};
        map_update(&execs, &tgid, &next, ANY);
        return 0;
    }
    int pair[2] = {-1, -1};
    switch (c.kind) {
    case K_RET:
        record(ctx, tgid, (__s32)ret);
        break;
    case K_FCNTL:
        if (c.arg[1] == F_DUPFD || c.arg[1] == F_DUPFD_CLOEXEC)
            record(ctx, tgid, (__s32)ret);
        break;
    case K_PAIR_ARG0:
    case K_PAIR_ARG3:
        if (read_user(pair, sizeof(pair), (const void *)c.arg[c.kind == K_PAIR_ARG0 ? 0 : 3]) == 0) {
            record(ctx, tgid, pair[0]);
            record(ctx, tgid, pair[1]);
        }
        break;
    }
    return 0;
}

// A watched process's children are watched from their first instruction: the
// tracepoint runs in the parent before the child is first scheduled.
SEC("raw_tracepoint/sched_process_fork")
int ledger_fork(struct raw_args *ctx) {
    __u32 parent = pid_tgid() >> 32;
    if (!map_lookup(&watched, &parent))
        return 0;
    struct task_struct *child = (struct task_struct *)ctx->args[1];
    int tgid = 0;
    read_kernel(&tgid, sizeof(tgid), __builtin_preserve_access_index(&child->tgid));
    if (tgid <= 0 || (__u32)tgid == parent)
        return 0; // a new thread of the same process
    __u32 key = tgid, record_it = W_RECORD;
    map_update(&watched, &key, &record_it, NOEXIST);
    return 0;
}

// A process that ends is no longer watched (its number may be reused).
SEC("raw_tracepoint/sched_process_exit")
int ledger_exit_process(struct raw_args *ctx) {
    __u64 id = pid_tgid();
    if ((__u32)id != (__u32)(id >> 32))
        return 0; // a thread, not the group's leader
    __u32 tgid = id >> 32;
    __u32 *w = map_lookup(&watched, &tgid);
    if (w && *w == W_RECORD)
        map_delete(&watched, &tgid);
    return 0;
}

// ---- The channel ledger ----------------------------------------------------
//
// Uprobes on a gRPC library's channel constructors and close, attached by
// user space to the binaries the watched processes run (see channels.rs).
// Each hit of a watched process sends one event; user space pairs them:
// a dial (the constructor's entry: its target and the user stack), the
// channel it made (a function the constructor calls with the new channel,
// on the same goroutine: its handle), and a close (the handle). Nothing is
// changed in the process: entry probes only, no return probes in Go (its
// runtime moves goroutine stacks and walks return addresses).

// Offsets in the uprobe's `struct pt_regs` of Go's first four integer
// arguments (register ABI, Go 1.17+; x86_64: ax, bx, cx, di) and of the
// goroutine register (x86_64: r14), set per architecture by the loader.
volatile const __u32 go_arg0_offset = 80;
volatile const __u32 go_arg1_offset = 40;
volatile const __u32 go_arg2_offset = 88;
volatile const __u32 go_arg3_offset = 112;
volatile const __u32 go_g_offset = 8;
// Bytes of `struct pt_regs` to copy (x86_64: 168).
volatile const __u32 regs_size = 168;
// The offset of a C function's return value (x86_64: ax). Its arguments are at
// arg0_offset and arg1_offset, as a system call's are.
volatile const __u32 ret_offset = 80;

#define TARGET_BYTES 128
// The descriptor number a channel dial's stack sample carries (no descriptor has it).
#define CHANNEL_FD -2
#define REGS_WORDS 34
enum { CH_DIAL = 1, CH_MADE = 2, CH_CLOSE = 3 };

struct chan_event {
    __u32 kind;
    __u32 tgid;
    __u64 handle;   // the channel (Go: its *ClientConn), for CH_MADE and CH_CLOSE
    __u64 g;        // the goroutine (Go: its g), pairing a dial with the channel it made
    __u64 ns;
    __u64 ret;      // at a function's entry, its return address (the word at sp): the caller,
                    // which a frame-pointer walk from the entry skips on older kernels
    __u32 target_len; // the target's full length (at most TARGET_BYTES - 1 copied)
    __u32 stack_bytes; // bytes of `pcs` the stack walk filled
    __u8 target[TARGET_BYTES];
    __u64 pcs[STACK_DEPTH];
};

struct {
    __uint(type, MAP_RINGBUF);
    __uint(max_entries, 1 << 20);
} chan_events SEC(".maps");

// Lost channel events: the ring full.
struct {
    __uint(type, MAP_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} chan_lost SEC(".maps");

static __attribute__((always_inline)) int watched_here(__u32 tgid) {
    __u32 *w = map_lookup(&watched, &tgid);
    return w && *w == W_RECORD;
}

// Register `offset` of the probed thread's user registers.
static __attribute__((always_inline)) __u64 user_reg(const __u64 *regs, __u32 offset) {
    __u32 i = offset / 8;
    if (i >= REGS_WORDS)
        return 0;
    return regs[i];
}

static __attribute__((always_inline)) struct chan_event *chan_start(__u32 kind, __u32 tgid) {
    struct chan_event *e = ringbuf_reserve(&chan_events, sizeof(struct chan_event), 0);
    if (!e) {
        __u32 zero = 0;
        __u64 *n = map_lookup(&chan_lost, &zero);
        if (n)
            __sync_fetch_and_add(n, 1);
        return 0;
    }
    e->kind = kind;
    e->tgid = tgid;
    e->handle = 0;
    e->g = 0;
    e->ns = ktime_ns();
    e->ret = 0;
    e->target_len = 0;
    e->stack_bytes = 0;
    e->target[0] = 0;
    return e;
}

// A channel constructor's entry: its target (`len` bytes at `ptr`, or a C string when
// `len` is negative), the caller's return address, the user stack, and `g`.
static __attribute__((always_inline)) int dial(void *ctx, const __u64 *regs, __u32 tgid, __u64 g, __u64 ptr, long len) {
    struct chan_event *e = chan_start(CH_DIAL, tgid);
    if (!e)
        return 0;
    e->g = g;
    if (len < 0) {
        // C code without frame pointers: a copy of the stack to unwind too, matched by
        // (tgid, CHANNEL_FD, ns); `handle` says one was sent.
        sample_at(user_reg(regs, ip_offset), user_reg(regs, sp_offset), user_reg(regs, fp_offset), tgid,
                  CHANNEL_FD, e->ns);
        e->handle = 1;
    }
    if (len < 0) {
        long got = read_user_str(e->target, TARGET_BYTES, (const void *)ptr);
        e->target_len = got > 0 ? (__u32)got - 1 : 0;
    } else {
        e->target_len = len > 0xffff ? 0xffff : (__u32)len;
        __u32 copy = len < TARGET_BYTES - 1 ? (__u32)len : TARGET_BYTES - 1;
        copy &= TARGET_BYTES - 1;
        if (read_user(e->target, copy, (const void *)ptr))
            e->target_len = 0;
    }
    read_user(&e->ret, sizeof(e->ret), (const void *)user_reg(regs, sp_offset));
    long got = get_stack(ctx, e->pcs, sizeof(e->pcs), USER_STACK);
    e->stack_bytes = got > 0 ? (__u32)got : 0;
    ringbuf_submit(e, 0);
    return 0;
}

static __attribute__((always_inline)) int go_dial(void *ctx, __u32 ptr_offset, __u32 len_offset) {
    __u32 tgid = pid_tgid() >> 32;
    if (!watched_here(tgid))
        return 0;
    __u64 regs[REGS_WORDS] = {};
    __u32 n = regs_size;
    if (n > sizeof(regs))
        n = sizeof(regs);
    read_kernel(regs, n, ctx);
    long len = (long)(user_reg(regs, len_offset) & 0x7fffffff);
    return dial(ctx, regs, tgid, user_reg(regs, go_g_offset), user_reg(regs, ptr_offset), len);
}

// grpc.Dial(target string, ...) and grpc.NewClient(target string, ...): the target in arguments 0 and 1.
SEC("uprobe/chan_go_dial01")
int chan_go_dial01(void *ctx) {
    return go_dial(ctx, go_arg0_offset, go_arg1_offset);
}

// grpc.DialContext(ctx context.Context, target string, ...): the target in arguments 2 and 3.
SEC("uprobe/chan_go_dial23")
int chan_go_dial23(void *ctx) {
    return go_dial(ctx, go_arg2_offset, go_arg3_offset);
}

// The channel's handle (at register `offset`) for `kind`, paired with its dial by `g`.
static __attribute__((always_inline)) int handle(void *ctx, __u32 kind, __u32 offset, int go) {
    __u64 id = pid_tgid();
    __u32 tgid = id >> 32;
    if (!watched_here(tgid))
        return 0;
    __u64 regs[REGS_WORDS] = {};
    __u32 n = regs_size;
    if (n > sizeof(regs))
        n = sizeof(regs);
    read_kernel(regs, n, ctx);
    struct chan_event *e = chan_start(kind, tgid);
    if (!e)
        return 0;
    e->g = go ? user_reg(regs, go_g_offset) : (__u32)id;
    e->handle = user_reg(regs, offset);
    ringbuf_submit(e, 0);
    return 0;
}

static __attribute__((always_inline)) int go_handle(void *ctx, __u32 kind) {
    return handle(ctx, kind, go_arg0_offset, 1);
}

// A function the constructor calls with the new *ClientConn first (grpc.chainUnaryClientInterceptors).
SEC("uprobe/chan_go_made")
int chan_go_made(void *ctx) {
    return go_handle(ctx, CH_MADE);
}

// (*grpc.ClientConn).Close: the receiver first.
SEC("uprobe/chan_go_close")
int chan_go_close(void *ctx) {
    return go_handle(ctx, CH_CLOSE);
}

// gRPC's C core (C++'s grpc++, Ruby, PHP; not Python's grpcio, which hides its
// symbols): grpc_channel_create(target, …) and grpc_insecure_channel_create(target, …)
// take the target first, grpc_secure_channel_create(creds, target, …) second; their
// return is the channel, paired with the dial by thread; grpc_channel_destroy(channel).
static __attribute__((always_inline)) int c_dial(void *ctx, __u32 offset) {
    __u64 id = pid_tgid();
    __u32 tgid = id >> 32;
    if (!watched_here(tgid))
        return 0;
    __u64 regs[REGS_WORDS] = {};
    __u32 n = regs_size;
    if (n > sizeof(regs))
        n = sizeof(regs);
    read_kernel(regs, n, ctx);
    return dial(ctx, regs, tgid, (__u32)id, user_reg(regs, offset), -1);
}

SEC("uprobe/chan_c_dial0")
int chan_c_dial0(void *ctx) {
    return c_dial(ctx, arg0_offset);
}

SEC("uprobe/chan_c_dial1")
int chan_c_dial1(void *ctx) {
    return c_dial(ctx, arg1_offset);
}

SEC("uretprobe/chan_c_made")
int chan_c_made(void *ctx) {
    return handle(ctx, CH_MADE, ret_offset, 0);
}

SEC("uprobe/chan_c_close")
int chan_c_close(void *ctx) {
    return handle(ctx, CH_CLOSE, arg0_offset, 0);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
