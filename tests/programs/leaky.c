/* A C program that leaks: every 50 ms it opens a pipe and a file and keeps
 * them, from two functions of its own. Compiled by the tests with the
 * system's C compiler (with -g, so origins give file:line). */
#include <fcntl.h>
#include <unistd.h>

static int kept[4096];
static int n;

static void keep(int fd) {
    if (fd >= 0 && n < 4096) kept[n++] = fd;
}

static void leak_pipe(void) {
    int p[2];
    if (pipe(p) == 0) {
        keep(p[0]);
        keep(p[1]);
    }
}

static void leak_file(const char *path) {
    keep(open(path, O_RDONLY));
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "/etc/hostname";
    for (int i = 0; i < 2000; i++) {
        leak_pipe();
        leak_file(path);
        usleep(50000);
    }
    return 0;
}
