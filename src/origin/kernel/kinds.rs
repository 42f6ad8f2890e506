//! Which system calls make or close descriptors, by this machine's numbers:
//! the table the ledger's programs read (`kinds` in `ledger.bpf.c`, whose
//! `K_*` values these mirror), and where the system call's arguments sit in
//! the kernel's saved registers, with the user's instruction, stack and
//! frame pointers.
//!
//! Not seen: descriptors that arrive in a message (`SCM_RIGHTS` through
//! `recvmsg`), and those io_uring makes (`IORING_OP_OPENAT`, `IORING_OP_ACCEPT`
//! with direct descriptors or not): neither passes through a system call that
//! returns them. They show as descriptors with no origin.

use libc::c_long;

/// The result is a new descriptor.
const RET: u32 = 1;
/// `fcntl`: a new descriptor when the command is F_DUPFD or F_DUPFD_CLOEXEC.
const FCNTL: u32 = 2;
/// Two descriptors written where the first argument points (`pipe`, `pipe2`).
const PAIR_ARG0: u32 = 3;
/// Two descriptors written where the fourth argument points (`socketpair`).
const PAIR_ARG3: u32 = 4;
const CLOSE: u32 = 5;
const CLOSE_RANGE: u32 = 6;
/// A new program: what the process made before it was made by other code.
const EXEC: u32 = 7;

/// Offsets of the first four system-call arguments in `struct pt_regs`: di, si, dx, r10.
#[cfg(target_arch = "x86_64")]
pub(super) const ARG_OFFSETS: (u32, u32, u32, u32) = (112, 104, 96, 56);
/// Offsets of the first four system-call arguments in `struct pt_regs`: x0 to x3.
#[cfg(target_arch = "aarch64")]
pub const ARG_OFFSETS: (u32, u32, u32, u32) = (0, 8, 16, 24);

/// Offsets of the user's instruction, stack and frame pointers in `struct pt_regs`: ip, sp, bp.
#[cfg(target_arch = "x86_64")]
pub(super) const REG_OFFSETS: (u32, u32, u32) = (128, 152, 32);
/// Offsets of the user's instruction, stack and frame pointers in `struct pt_regs`: pc, sp, x29.
#[cfg(target_arch = "aarch64")]
pub const REG_OFFSETS: (u32, u32, u32) = (256, 248, 232);

/// Offsets in a uprobe's `struct pt_regs` of Go's first four integer arguments (register
/// ABI): ax, bx, cx, di.
#[cfg(target_arch = "x86_64")]
pub(super) const GO_ARG_OFFSETS: (u32, u32, u32, u32) = (80, 40, 88, 112);
/// …: x0 to x3.
#[cfg(target_arch = "aarch64")]
pub const GO_ARG_OFFSETS: (u32, u32, u32, u32) = (0, 8, 16, 24);
/// The offset of Go's goroutine register: r14 on x86_64, x28 on aarch64.
#[cfg(target_arch = "x86_64")]
pub(super) const GO_G_OFFSET: u32 = 8;
#[cfg(target_arch = "aarch64")]
pub const GO_G_OFFSET: u32 = 224;
/// Bytes of `struct pt_regs` the channel probes copy (aarch64: the user registers, pc and sp).
#[cfg(target_arch = "x86_64")]
pub(super) const REGS_SIZE: u32 = 168;
#[cfg(target_arch = "aarch64")]
pub const REGS_SIZE: u32 = 272;

/// The offset of a C function's return value: ax on x86_64, x0 on aarch64.
#[cfg(target_arch = "x86_64")]
pub(super) const RET_OFFSET: u32 = 80;
#[cfg(target_arch = "aarch64")]
pub const RET_OFFSET: u32 = 0;

/// (syscall number, kind) for every call the ledger follows on this architecture.
pub(super) fn table() -> Vec<(u32, u32)> {
    let mut t: Vec<(c_long, u32)> = vec![
        (libc::SYS_openat, RET),
        (libc::SYS_openat2, RET),
        (libc::SYS_open_by_handle_at, RET),
        (libc::SYS_socket, RET),
        (libc::SYS_accept, RET),
        (libc::SYS_accept4, RET),
        (libc::SYS_dup, RET),
        (libc::SYS_dup3, RET),
        (libc::SYS_eventfd2, RET),
        (libc::SYS_epoll_create1, RET),
        (libc::SYS_timerfd_create, RET),
        (libc::SYS_signalfd4, RET),
        (libc::SYS_memfd_create, RET),
        (libc::SYS_inotify_init1, RET),
        (libc::SYS_fanotify_init, RET),
        (libc::SYS_pidfd_open, RET),
        (libc::SYS_pidfd_getfd, RET),
        (libc::SYS_userfaultfd, RET),
        (libc::SYS_perf_event_open, RET),
        (libc::SYS_io_uring_setup, RET),
        (libc::SYS_mq_open, RET),
        (libc::SYS_memfd_secret, RET),
        (libc::SYS_fsopen, RET),
        (libc::SYS_fsmount, RET),
        (libc::SYS_fspick, RET),
        (libc::SYS_open_tree, RET),
        (libc::SYS_fcntl, FCNTL),
        (libc::SYS_pipe2, PAIR_ARG0),
        (libc::SYS_socketpair, PAIR_ARG3),
        (libc::SYS_close, CLOSE),
        (libc::SYS_close_range, CLOSE_RANGE),
        (libc::SYS_execve, EXEC),
        (libc::SYS_execveat, EXEC),
    ];
    #[cfg(target_arch = "x86_64")]
    t.extend([
        (libc::SYS_open, RET),
        (libc::SYS_creat, RET),
        (libc::SYS_dup2, RET),
        (libc::SYS_eventfd, RET),
        (libc::SYS_epoll_create, RET),
        (libc::SYS_signalfd, RET),
        (libc::SYS_inotify_init, RET),
        (libc::SYS_pipe, PAIR_ARG0),
    ]);
    t.into_iter().map(|(nr, kind)| (nr as u32, kind)).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_number_fits_the_programs_table_once() {
        let t = super::table();
        let mut nrs: Vec<u32> = t.iter().map(|(nr, _)| *nr).collect();
        nrs.sort_unstable();
        nrs.dedup();
        assert_eq!(nrs.len(), t.len(), "a syscall listed twice");
        // NR_SYSCALLS in ledger.bpf.c
        assert!(nrs.iter().all(|nr| *nr < 1024));
    }
}
