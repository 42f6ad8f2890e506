//! Where a server listens, in gRPC's own naming, and the sockets to reach it:
//! `HOST:PORT` over TCP, `unix:///abs/path` or `unix:relative/path` for a
//! Unix socket file, and `unix-abstract:name` for a name in Linux's abstract
//! namespace. The services that run a node (containerd, CSI drivers, device
//! plugins) speak gRPC on a socket file, so every place that takes an address
//! takes any of these, and every dial and listen goes through here.

mod stream;

pub use stream::{connector, Listener, ReadHalf, Stream, WriteHalf};

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// A server's address: TCP, a Unix socket file, or an abstract Unix name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    Tcp(SocketAddr),
    /// A socket file, its path as given (relative to the current directory when not absolute).
    Unix(PathBuf),
    /// A name in the abstract namespace (no file; gone when its listener closes).
    Abstract(String),
}

/// Why a string is not an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("{0:?} is not HOST:PORT, unix:///ABSOLUTE/PATH, unix:PATH or unix-abstract:NAME: {1}")]
    Invalid(String, &'static str),
    #[error("{0:?}: {1}")]
    Unresolved(String, String),
}

impl Address {
    /// The TCP address, when it is one.
    pub fn tcp(&self) -> Option<SocketAddr> {
        match self {
            Address::Tcp(a) => Some(*a),
            _ => None,
        }
    }

    /// Whether this is a Unix socket (a file or an abstract name).
    pub fn is_unix(&self) -> bool {
        !matches!(self, Address::Tcp(_))
    }

    /// How the kernel's tables (`/proc/net/unix`, sock_diag) name this socket:
    /// the path as bound, or `@name` for an abstract one. None for TCP.
    pub fn socket_name(&self) -> Option<String> {
        match self {
            Address::Tcp(_) => None,
            Address::Unix(p) => Some(p.display().to_string()),
            Address::Abstract(n) => Some(format!("@{n}")),
        }
    }

    /// The path tokio takes for this Unix socket: the file, or NUL then the abstract name.
    fn unix_path(&self) -> Option<PathBuf> {
        match self {
            Address::Tcp(_) => None,
            Address::Unix(p) => Some(p.clone()),
            Address::Abstract(n) => Some(PathBuf::from(format!("\0{n}"))),
        }
    }
}

impl From<SocketAddr> for Address {
    fn from(a: SocketAddr) -> Address {
        Address::Tcp(a)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(a) => write!(f, "{a}"),
            Address::Unix(p) if p.is_absolute() => write!(f, "unix://{}", p.display()),
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
            Address::Abstract(n) => write!(f, "unix-abstract:{n}"),
        }
    }
}

/// The longest path a Unix socket address holds (`sun_path` less its NUL).
const MAX_UNIX_PATH: usize = 107;

impl FromStr for Address {
    type Err = AddressError;

    /// Parses gRPC's naming; a host name is resolved (to its first address) here.
    fn from_str(s: &str) -> Result<Address, AddressError> {
        let bad = |why| AddressError::Invalid(s.to_string(), why);
        if let Some(name) = s.strip_prefix("unix-abstract:") {
            if name.is_empty() || name.len() > MAX_UNIX_PATH - 1 {
                return Err(bad("an abstract name is 1 to 106 bytes"));
            }
            return Ok(Address::Abstract(name.to_string()));
        }
        if let Some(rest) = s.strip_prefix("unix:") {
            let path = match rest.strip_prefix("//") {
                // unix://AUTHORITY/... is not gRPC's naming: the path after "unix://" must be absolute.
                Some(p) if !p.starts_with('/') => {
                    return Err(bad("after unix:// the path must be absolute (unix:///run/x.sock)"))
                }
                Some(p) => p,
                None => rest,
            };
            if path.is_empty() {
                return Err(bad("the socket path is empty"));
            }
            if path.len() > MAX_UNIX_PATH {
                return Err(bad("a Unix socket path is at most 107 bytes"));
            }
            if path.contains('\0') {
                return Err(bad("a Unix socket path holds no NUL"));
            }
            return Ok(Address::Unix(PathBuf::from(path)));
        }
        if let Ok(a) = s.parse::<SocketAddr>() {
            return Ok(Address::Tcp(a));
        }
        let (host, port) = s.rsplit_once(':').ok_or_else(|| bad("missing :PORT"))?;
        let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
        let unresolved = |why: String| AddressError::Unresolved(s.to_string(), why);
        std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
            .map_err(|e| unresolved(e.to_string()))?
            .next()
            .map(Address::Tcp)
            .ok_or_else(|| unresolved(format!("{host} has no address")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_grpc_naming() {
        for (text, want) in [
            ("127.0.0.1:80", Address::Tcp("127.0.0.1:80".parse().unwrap())),
            ("[::1]:82", Address::Tcp("[::1]:82".parse().unwrap())),
            ("unix:///run/x.sock", Address::Unix("/run/x.sock".into())),
            ("unix:/run/x.sock", Address::Unix("/run/x.sock".into())),
            ("unix:rel/x.sock", Address::Unix("rel/x.sock".into())),
            ("unix-abstract:fdsoak", Address::Abstract("fdsoak".into())),
        ] {
            assert_eq!(text.parse::<Address>().unwrap(), want, "{text}");
        }
        assert_eq!(Address::Unix("/run/x.sock".into()).to_string(), "unix:///run/x.sock");
        assert_eq!(Address::Unix("rel/x".into()).to_string(), "unix:rel/x");
        assert_eq!("localhost:81".parse::<Address>().unwrap().tcp().unwrap().port(), 81);
        assert_eq!(Address::Abstract("a".into()).socket_name().unwrap(), "@a");
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        for text in [
            "nope",
            "unix:",
            "unix://host/x",
            "unix-abstract:",
            "1.2.3.4:x",
            &format!("unix:/{}", "a".repeat(200)),
        ] {
            let e = text.parse::<Address>().unwrap_err().to_string();
            assert!(e.contains("HOST:PORT") && e.contains("unix:"), "{text}: {e}");
        }
    }
}
