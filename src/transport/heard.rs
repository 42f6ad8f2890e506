//! What a server said at the HTTP/2 level, kept whole. h2 passes a GOAWAY's
//! error code and debug data on only to the streams it refuses; a server
//! that sends GOAWAY and then closes the socket (grpc-java on an internal
//! error does) fails the streams still open with "broken pipe", and the
//! cause is lost. [`Tap`] reads the frame headers of everything the server
//! sends, skips every payload but a GOAWAY's, and keeps the last GOAWAY in
//! the connection's [`Heard`], so that a call's failure can say what the
//! server said, as grpcio does. [`Cause`] is that, or a stream's RST_STREAM.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Debug data kept of a GOAWAY, in bytes; the rest is dropped.
const DEBUG_MAX: usize = 256;
const FRAME_HEADER: usize = 9;
const GOAWAY: u8 = 0x7;

/// Why a call failed, in the server's HTTP/2 words.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cause {
    /// The server closed the connection with a GOAWAY.
    GoAway { code: u32, debug: Arc<str> },
    /// The server reset the call's stream.
    Reset { code: u32 },
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = |code: u32| format!("{:?}", h2::Reason::from(code));
        match self {
            Cause::GoAway { code, debug } if debug.is_empty() => {
                write!(f, "GOAWAY received: error code {code} ({})", name(*code))
            }
            Cause::GoAway { code, debug } => write!(
                f,
                "GOAWAY received: error code {code} ({}), debug data '{}'",
                name(*code),
                debug.escape_debug()
            ),
            Cause::Reset { code } => write!(f, "RST_STREAM received: error code {code} ({})", name(*code)),
        }
    }
}

impl Cause {
    /// The cause a status message built by [`super::h2body::status_of`] names, in its words.
    pub fn in_message(message: &str) -> Option<&str> {
        ["GOAWAY received:", "RST_STREAM received:"]
            .iter()
            .filter_map(|m| message.find(m))
            .min()
            .map(|i| &message[i..])
    }
}

/// The last GOAWAY a connection's server sent, shared by its calls.
#[derive(Debug, Clone, Default)]
pub(crate) struct Heard(Arc<Mutex<Option<Cause>>>);

impl Heard {
    /// The last GOAWAY the server sent on this connection, if any.
    pub(crate) fn goaway(&self) -> Option<Cause> {
        crate::domain::lock(&self.0).clone()
    }

    /// The cause of a call's failure `e`: the stream's own reset, the GOAWAY that h2
    /// passed on, or else the last GOAWAY this connection heard.
    pub(crate) fn cause_of(&self, e: &h2::Error) -> Option<Cause> {
        match e.reason() {
            Some(r) if e.is_reset() && e.is_remote() => Some(Cause::Reset { code: r.into() }),
            _ => self.goaway(),
        }
    }
}

/// Where the reader is in the server's frames.
#[derive(Debug)]
enum Parse {
    /// Reading a frame header: the bytes so far.
    Header { buf: [u8; FRAME_HEADER], have: usize },
    /// Reading a GOAWAY's payload: what is kept of it, and how much is left.
    GoAway { keep: Vec<u8>, left: usize },
    /// Skipping a payload.
    Skip { left: usize },
}

/// A connection's socket, reading the server's frames as they pass.
pub(crate) struct Tap<T> {
    io: T,
    heard: Heard,
    parse: Parse,
}

impl<T> Tap<T> {
    pub(crate) fn new(io: T, heard: Heard) -> Tap<T> {
        Tap {
            io,
            heard,
            parse: Parse::Header {
                buf: [0; FRAME_HEADER],
                have: 0,
            },
        }
    }

    /// Follows the frames in `bytes`, the next the server sent.
    fn follow(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match &mut self.parse {
                Parse::Header { buf, have } => {
                    let n = (FRAME_HEADER - *have).min(bytes.len());
                    buf[*have..*have + n].copy_from_slice(&bytes[..n]);
                    *have += n;
                    bytes = &bytes[n..];
                    if *have == FRAME_HEADER {
                        let len = u32::from_be_bytes([0, buf[0], buf[1], buf[2]]) as usize;
                        self.parse = match buf[3] {
                            GOAWAY => Parse::GoAway {
                                keep: Vec::with_capacity(len.min(8 + DEBUG_MAX)),
                                left: len,
                            },
                            _ => Parse::Skip { left: len },
                        };
                        self.finish_payload();
                    }
                }
                Parse::GoAway { keep, left } => {
                    let n = (*left).min(bytes.len());
                    let room = (8 + DEBUG_MAX).saturating_sub(keep.len()).min(n);
                    keep.extend_from_slice(&bytes[..room]);
                    *left -= n;
                    bytes = &bytes[n..];
                    self.finish_payload();
                }
                Parse::Skip { left } => {
                    let n = (*left).min(bytes.len());
                    *left -= n;
                    bytes = &bytes[n..];
                    self.finish_payload();
                }
            }
        }
    }

    /// At a payload's end: keep a GOAWAY, and read the next frame header.
    fn finish_payload(&mut self) {
        let done = match &self.parse {
            Parse::GoAway { left, .. } | Parse::Skip { left } => *left == 0,
            Parse::Header { .. } => false,
        };
        if !done {
            return;
        }
        let next = Parse::Header {
            buf: [0; FRAME_HEADER],
            have: 0,
        };
        if let Parse::GoAway { keep, .. } = std::mem::replace(&mut self.parse, next) {
            if keep.len() >= 8 {
                let code = u32::from_be_bytes([keep[4], keep[5], keep[6], keep[7]]);
                let debug = String::from_utf8_lossy(&keep[8..]).into_owned();
                *crate::domain::lock(&self.heard.0) = Some(Cause::GoAway {
                    code,
                    debug: debug.into(),
                });
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tap<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let this = &mut *self;
            this.follow(&buf.filled()[before..]);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tap<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut f = len.to_be_bytes()[1..].to_vec();
        f.extend([kind, 0]);
        f.extend(stream.to_be_bytes());
        f.extend(payload);
        f
    }

    #[test]
    fn keeps_the_last_goaway_however_the_bytes_are_split() {
        let mut goaway = 3u32.to_be_bytes().to_vec();
        goaway.extend(2u32.to_be_bytes());
        goaway.extend(b"io/perfmark/PerfMark");
        let mut stream = frame(0x4, 0, &[0; 12]); // SETTINGS
        stream.extend(frame(0x0, 1, &[7; 300])); // DATA
        stream.extend(frame(GOAWAY, 0, &goaway));
        for chunk in [1, 2, 7, 9, 64, stream.len()] {
            let mut tap = Tap::new((), Heard::default());
            for piece in stream.chunks(chunk) {
                tap.follow(piece);
            }
            let cause = tap.heard.goaway().unwrap();
            assert_eq!(
                cause.to_string(),
                "GOAWAY received: error code 2 (INTERNAL_ERROR), debug data 'io/perfmark/PerfMark'",
                "read {chunk} bytes at a time"
            );
        }
        let mut long = 0u32.to_be_bytes().to_vec();
        long.extend(11u32.to_be_bytes());
        long.extend([b'x'; 1000]);
        let mut tap = Tap::new((), Heard::default());
        tap.follow(&frame(GOAWAY, 0, &long));
        tap.follow(&frame(0x6, 0, &[0; 8])); // PING after it
        let Some(Cause::GoAway { code, debug }) = tap.heard.goaway() else {
            panic!()
        };
        assert_eq!((code, debug.len()), (11, DEBUG_MAX));
        assert_eq!(
            Cause::Reset { code: 8 }.to_string(),
            "RST_STREAM received: error code 8 (CANCEL)"
        );
    }
}
