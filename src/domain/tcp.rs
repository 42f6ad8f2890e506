//! TCP states: the one table of them (kernel code, the name `ss` prints, the
//! `samples.csv` column) and a process's sockets counted by state.

use serde::Serialize;

/// A TCP state, numbered as the kernel numbers it (include/net/tcp_states.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpState {
    Established = 1,
    SynSent,
    SynRecv,
    FinWait1,
    FinWait2,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    Closing,
}

/// The one table of TCP states: each with its kernel code's order, its name as
/// `ss` prints it, and its `samples.csv` column.
pub const TCP_STATES: [(TcpState, &str, &str); 11] = [
    (TcpState::Established, "ESTABLISHED", "tcp_established"),
    (TcpState::SynSent, "SYN_SENT", "tcp_syn_sent"),
    (TcpState::SynRecv, "SYN_RECV", "tcp_syn_recv"),
    (TcpState::FinWait1, "FIN_WAIT1", "tcp_fin_wait1"),
    (TcpState::FinWait2, "FIN_WAIT2", "tcp_fin_wait2"),
    (TcpState::TimeWait, "TIME_WAIT", "tcp_time_wait"),
    (TcpState::Close, "CLOSE", "tcp_close"),
    (TcpState::CloseWait, "CLOSE_WAIT", "tcp_close_wait"),
    (TcpState::LastAck, "LAST_ACK", "tcp_last_ack"),
    (TcpState::Listen, "LISTEN", "tcp_listen"),
    (TcpState::Closing, "CLOSING", "tcp_closing"),
];

impl TcpState {
    /// The state for a kernel code, if it is one.
    pub fn from_code(code: u8) -> Option<TcpState> {
        TCP_STATES.get(usize::from(code).checked_sub(1)?).map(|(s, _, _)| *s)
    }

    fn index(self) -> usize {
        self as usize - 1
    }

    /// The name `ss` prints.
    pub fn name(self) -> &'static str {
        TCP_STATES[self.index()].1
    }
}

/// A process's TCP sockets by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpStates([u64; 11]);

impl TcpStates {
    pub fn get(&self, s: TcpState) -> u64 {
        self.0[s.index()]
    }

    pub fn set(&mut self, s: TcpState, n: u64) {
        self.0[s.index()] = n;
    }

    /// Counts one socket by the kernel's numeric state; unknown codes are ignored.
    pub fn add_code(&mut self, code: u8) {
        if let Some(s) = TcpState::from_code(code) {
            self.0[s.index()] += 1;
        }
    }

    pub fn close_wait(&self) -> u64 {
        self.get(TcpState::CloseWait)
    }

    /// Every state with its count, in the table's order.
    pub fn iter(&self) -> impl Iterator<Item = (TcpState, u64)> + '_ {
        TCP_STATES.iter().map(|(s, _, _)| (*s, self.get(*s)))
    }
}

impl Serialize for TcpStates {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(TCP_STATES.len()))?;
        for (state, n) in self.iter() {
            m.serialize_entry(state.name(), &n)?;
        }
        m.end()
    }
}

/// One end of a TCP connection a watched process holds: its addresses, its
/// state, and the group its process's fingerprint puts it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnEnd {
    pub local: std::net::SocketAddr,
    pub remote: std::net::SocketAddr,
    pub state: u8,
    pub group: String,
}

/// The fault proxy's two sockets for one relayed connection, each as (local, remote):
/// the one the client dialled, the one toward the target.
pub type Relay = [(std::net::SocketAddr, std::net::SocketAddr); 2];

/// The TCP connections of the watched processes at the end of a run, read before any
/// of them is stopped, and the proxy's relays between them: who holds whose other end.
#[derive(Debug, Clone, Default)]
pub struct Connections {
    /// Per watched process: its role, its PID and its connection ends.
    pub ends: Vec<(super::Role, i32, Vec<ConnEnd>)>,
    pub relays: Vec<Relay>,
}
