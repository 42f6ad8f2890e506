/* A C program that closes and receives descriptors by routes an agent can
 * miss: close_range, closefrom, a vfork child's close, posix_spawn's file
 * actions, and descriptors received over a Unix socket (SCM_RIGHTS). It
 * prints what it did and its descriptor count, then waits for stdin to
 * close so that its origins can be read; the tests run it with the native
 * agent and without, and compare. Built by the tests with -g. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d) return -1;
    while (readdir(d)) n++;
    closedir(d);
    return n - 3; /* ".", ".." and the listing's own */
}

static int open_many(int fds[], int n) {
    for (int i = 0; i < n; i++) fds[i] = open("/dev/null", O_RDONLY);
    return fds[n - 1];
}

static void send_fd(int sock, int fd) {
    char byte = 'x';
    struct iovec io = {.iov_base = &byte, .iov_len = 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } u;
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    if (sendmsg(sock, &m, 0) != 1) perror("sendmsg");
}

static int receive_fd(int sock) {
    char byte;
    struct iovec io = {.iov_base = &byte, .iov_len = 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } u;
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    if (recvmsg(sock, &m, 0) != 1) return -1;
    int fd = -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    if (c && c->cmsg_type == SCM_RIGHTS) memcpy(&fd, CMSG_DATA(c), sizeof(int));
    return fd;
}

int main(void) {
    int kept[4], ranged[6];
    open_many(kept, 4);
    open_many(ranged, 6);
    /* close_range closes the six; the numbers come back through a raw system call
     * the agent does not see, so they have no origin. */
    int r = close_range((unsigned)ranged[0], (unsigned)ranged[5], 0);
    int raw = (int)syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY, 0);
    /* A descriptor received over a Unix socket, at a number close_range closed. */
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    int sent = open("/dev/zero", O_RDONLY);
    send_fd(sv[0], sent);
    int got = receive_fd(sv[1]);
    close(sent);
    /* A vfork child closes one of the kept descriptors: the parent still holds it. */
    pid_t child = vfork();
    if (child == 0) {
        close(kept[0]);
        _exit(0);
    }
    int status;
    waitpid(child, &status, 0);
    /* posix_spawn closes and dups in its child only. */
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addclose(&fa, kept[1]);
    posix_spawn_file_actions_adddup2(&fa, kept[2], 1);
    pid_t spawned;
    char *argv[] = {"true", NULL};
    int sp = posix_spawnp(&spawned, "true", &fa, NULL, argv, environ);
    if (sp == 0) waitpid(spawned, &status, 0);
    posix_spawn_file_actions_destroy(&fa);
    /* closefrom above everything held so far: nothing to close. */
    closefrom(200);
    printf("kept %d %d %d %d raw %d got %d close_range %d spawn %d fds %d\n", kept[0], kept[1], kept[2],
           kept[3], raw, got, r, sp, count_fds());
    fflush(stdout);
    char buf[1];
    while (read(0, buf, 1) > 0) {
    }
    return 0;
}
