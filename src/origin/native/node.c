/*
 * The native agent's Node part: the channel ledger's table for grpc-js.
 *
 * grpc-js opens a channel's sockets from its own callbacks (the resolver's, the
 * subchannel's), so a socket's stack names no line of the program. The script
 * fdsoak puts on Node's `--require` (`origin/grpcjs_ledger.js`) sees each
 * grpc-js Channel made (a Client makes one) and each close(), with the
 * JavaScript stack that made it; it hands them to this library, which Node
 * loads as a Node-API module (the library is already on LD_PRELOAD, so
 * process.dlopen returns the same object). Sites live in a table of fixed
 * slots in a memfd ("fdsoak-nchannels"), claimed by compare-and-swap on the
 * hash of their stack's text, which fdsoak reads through /proc/PID/mem as the
 * other tables.
 *
 * Node-API's functions are looked up in the process at registration, so the
 * library needs no Node headers and loads in any process.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define NCHAN_MAGIC "FDSOAKN1"
#define NCHAN_SITES 256
#define NCHAN_TEXT 2048
#define NCHAN_TARGET 128

struct nchan_site {
    uint64_t hash; /* 0: free */
    uint32_t ready; /* 1 once its text and target are written */
    uint32_t pad;
    uint64_t created, closed;
    char text[NCHAN_TEXT]; /* one frame a line: function, file and line, tab-separated */
    char target[NCHAN_TARGET];
};

struct nchan_header {
    char magic[8];
    uint32_t version, sites, text, target;
    uint64_t full; /* channels whose site found no free slot */
    uint64_t pad[4]; /* to 64 bytes */
};

__attribute__((visibility("hidden"))) void *map_named(const char *name, size_t bytes);
__attribute__((visibility("hidden"))) int64_t site_claim(void *table, size_t size, uint32_t slots, uint64_t hash, int *fresh);

_Static_assert(sizeof(struct nchan_header) == 64, "the header fdsoak reads is 64 bytes");
_Static_assert(sizeof(struct nchan_site) == 32 + NCHAN_TEXT + NCHAN_TARGET, "a site is its head, text and target");

static struct nchan_header *nchan;
static struct nchan_site *nsites;

/* Node-API, as declared by its stable C ABI. */
typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_callback_info__ *napi_callback_info;
typedef napi_value (*napi_callback)(napi_env, napi_callback_info);
typedef int (*CreateFunction)(napi_env, const char *, size_t, napi_callback, void *, napi_value *);
typedef int (*SetNamedProperty)(napi_env, napi_value, const char *, napi_value);
typedef int (*GetCbInfo)(napi_env, napi_callback_info, size_t *, napi_value *, napi_value *, void **);
typedef int (*GetString)(napi_env, napi_value, char *, size_t, size_t *);
typedef int (*GetUint32)(napi_env, napi_value, uint32_t *);
typedef int (*CreateUint32)(napi_env, uint32_t, napi_value *);

static struct {
    GetCbInfo cb_info;
    GetString string;
    GetUint32 uint32;
    CreateUint32 create_uint32;
} napi;

/* The slot (1-based) of the site whose stack is `text`, claimed if new; 0 when the
 * table is full or absent. */
static uint32_t site_of(const char *text, const char *target) {
    uint64_t hash = 1469598103934665603ull;
    for (const char *c = text; *c; c++) hash = (hash ^ (uint8_t)*c) * 1099511628211ull;
    if (!hash) hash = 1;
    int fresh = 0;
    int64_t slot = site_claim(nsites, sizeof *nsites, NCHAN_SITES, hash, &fresh);
    if (slot < 0) {
        __atomic_add_fetch(&nchan->full, 1, __ATOMIC_RELAXED);
        return 0;
    }
    if (fresh) {
        memcpy(nsites[slot].text, text, NCHAN_TEXT);
        memcpy(nsites[slot].target, target, NCHAN_TARGET);
        __atomic_store_n(&nsites[slot].ready, 1, __ATOMIC_RELEASE);
    }
    return (uint32_t)slot + 1;
}

/* made(text, target) → the site's slot (0: not kept); the site counts one created. */
static napi_value made(napi_env env, napi_callback_info info) {
    size_t argc = 2;
    napi_value argv[2];
    char text[NCHAN_TEXT] = {0}, target[NCHAN_TARGET] = {0};
    uint32_t slot = 0;
    size_t n = 0;
    if (nchan && napi.cb_info(env, info, &argc, argv, NULL, NULL) == 0 && argc == 2 &&
        napi.string(env, argv[0], text, sizeof text, &n) == 0 && n > 0 &&
        napi.string(env, argv[1], target, sizeof target, &n) == 0) {
        slot = site_of(text, target);
        if (slot) __atomic_add_fetch(&nsites[slot - 1].created, 1, __ATOMIC_RELAXED);
    }
    napi_value out = NULL;
    napi.create_uint32(env, slot, &out);
    return out;
}

/* closed(slot): the site counts one closed (the script calls it once a channel). */
static napi_value closed(napi_env env, napi_callback_info info) {
    size_t argc = 1;
    napi_value argv[1];
    uint32_t slot = 0;
    if (nchan && napi.cb_info(env, info, &argc, argv, NULL, NULL) == 0 && argc == 1 &&
        napi.uint32(env, argv[0], &slot) == 0 && slot >= 1 && slot <= NCHAN_SITES)
        __atomic_add_fetch(&nsites[slot - 1].closed, 1, __ATOMIC_RELAXED);
    return NULL;
}

/* Node's entry for a Node-API module: the table, and the two functions on `exports`. */
napi_value napi_register_module_v1(napi_env env, napi_value exports) {
    CreateFunction create = (CreateFunction)dlsym(RTLD_DEFAULT, "napi_create_function");
    SetNamedProperty set = (SetNamedProperty)dlsym(RTLD_DEFAULT, "napi_set_named_property");
    napi.cb_info = (GetCbInfo)dlsym(RTLD_DEFAULT, "napi_get_cb_info");
    napi.string = (GetString)dlsym(RTLD_DEFAULT, "napi_get_value_string_utf8");
    napi.uint32 = (GetUint32)dlsym(RTLD_DEFAULT, "napi_get_value_uint32");
    napi.create_uint32 = (CreateUint32)dlsym(RTLD_DEFAULT, "napi_create_uint32");
    if (!create || !set || !napi.cb_info || !napi.string || !napi.uint32 || !napi.create_uint32) return exports;
    if (!nchan) {
        struct nchan_header *h = map_named("fdsoak-nchannels", sizeof *h + (size_t)NCHAN_SITES * sizeof(struct nchan_site));
        if (!h) return exports;
        memcpy(h->magic, NCHAN_MAGIC, 8);
        h->version = 1;
        h->sites = NCHAN_SITES;
        h->text = NCHAN_TEXT;
        h->target = NCHAN_TARGET;
        nsites = (struct nchan_site *)(h + 1);
        __atomic_store_n(&nchan, h, __ATOMIC_RELEASE);
    }
    napi_value fn = NULL;
    if (create(env, "made", 4, made, NULL, &fn) == 0) set(env, exports, "made", fn);
    if (create(env, "closed", 6, closed, NULL, &fn) == 0) set(env, exports, "closed", fn);
    return exports;
}
