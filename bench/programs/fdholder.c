/* Holds N open descriptors (files on /dev/null, opened through libc so the
 * native origin agent records each), prints "ready", and waits for stdin to
 * close. For benches/origin_table.rs. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

static int open_one(void) { return open("/dev/null", O_RDONLY); }

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 10000;
    struct rlimit r;
    getrlimit(RLIMIT_NOFILE, &r);
    r.rlim_cur = r.rlim_max < (rlim_t)n + 64 ? r.rlim_max : (rlim_t)n + 64;
    setrlimit(RLIMIT_NOFILE, &r);
    for (int i = 0; i < n; i++)
        if (open_one() < 0) {
            perror("open");
            return 1;
        }
    printf("ready\n");
    fflush(stdout);
    char c;
    while (read(0, &c, 1) > 0) {
    }
    return 0;
}
