//! Just enough HTTP/2 for the proxy to send frames of its own: where each
//! frame starts and ends in a plaintext byte stream, read from the 9-byte
//! frame headers alone (no HPACK, no payload parsing), so that a GOAWAY or a
//! RST_STREAM can go in between two whole frames, and never inside a header
//! block (HEADERS or PUSH_PROMISE and their CONTINUATIONs). The bytes
//! themselves pass through unchanged. A stream that does not open with the
//! client preface (HTTP/1, TLS) is left alone: nothing is ever injected into it.

/// The client connection preface (RFC 9113 §3.4).
pub(crate) const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub(crate) const HEADERS: u8 = 0x1;
pub(crate) const RST_STREAM: u8 = 0x3;
pub(crate) const PUSH_PROMISE: u8 = 0x5;
pub(crate) const GOAWAY: u8 = 0x7;
pub(crate) const CONTINUATION: u8 = 0x9;
const END_HEADERS: u8 = 0x4;

/// A frame's 9-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    pub len: u32,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
}

impl FrameHeader {
    fn parse(b: &[u8; 9]) -> FrameHeader {
        FrameHeader {
            len: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        }
    }
}

/// A GOAWAY frame: the last stream the sender will process, an error code, debug data.
pub(crate) fn goaway(last_stream: u32, code: u32, debug: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(8 + debug.len());
    payload.extend_from_slice(&(last_stream & 0x7fff_ffff).to_be_bytes());
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(debug);
    frame(GOAWAY, 0, 0, &payload)
}

/// A RST_STREAM frame for `stream`.
pub(crate) fn rst_stream(stream: u32, code: u32) -> Vec<u8> {
    frame(RST_STREAM, 0, stream, &code.to_be_bytes())
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).min(0xff_ffff).to_be_bytes();
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&len[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Where one direction of a connection is, between or inside frames.
#[derive(Debug, Clone)]
pub(crate) struct Framer {
    state: State,
    /// Inside a header block: no frame of another stream may come in between.
    in_header_block: bool,
    /// A whole frame has passed: each side's first frame must be its own SETTINGS.
    started: bool,
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Matched this many bytes of the client preface so far.
    Preface(usize),
    /// Read this many bytes of the next frame's header.
    Header([u8; 9], usize),
    /// This many payload bytes of the current frame are still to come.
    Payload(u32),
    /// Not HTTP/2 (the preface did not match): never inject.
    Opaque,
}

impl Framer {
    /// The client-to-server direction, which opens with the preface.
    pub(crate) fn client() -> Framer {
        Framer {
            state: State::Preface(0),
            in_header_block: false,
            started: false,
        }
    }

    /// The server-to-client direction, frames from the first byte.
    pub(crate) fn server() -> Framer {
        Framer {
            state: State::Header([0; 9], 0),
            in_header_block: false,
            started: false,
        }
    }

    /// Whether a frame of the proxy's own may be written now: between two
    /// frames of an HTTP/2 stream (after the first), outside any header block.
    pub(crate) fn at_boundary(&self) -> bool {
        self.started && matches!(self.state, State::Header(_, 0)) && !self.in_header_block
    }

    /// Whether this direction turned out not to be HTTP/2.
    pub(crate) fn is_opaque(&self) -> bool {
        matches!(self.state, State::Opaque)
    }

    /// Reads `data` and returns how many bytes of it take the stream to the
    /// next point where [`Framer::at_boundary`] holds (all of it when there is
    /// none, or when `stop_at_boundary` is false); `frame` is called with each
    /// frame header as it completes.
    pub(crate) fn advance(&mut self, data: &[u8], stop_at_boundary: bool, mut frame: impl FnMut(FrameHeader)) -> usize {
        let mut at = 0;
        while at < data.len() {
            match &mut self.state {
                State::Opaque => return data.len(),
                State::Preface(n) => {
                    let take = (PREFACE.len() - *n).min(data.len() - at);
                    if data[at..at + take] != PREFACE[*n..*n + take] {
                        self.state = State::Opaque;
                        return data.len();
                    }
                    *n += take;
                    at += take;
                    if *n == PREFACE.len() {
                        self.state = State::Header([0; 9], 0);
                    }
                }
                State::Header(buf, n) => {
                    let take = (9 - *n).min(data.len() - at);
                    buf[*n..*n + take].copy_from_slice(&data[at..at + take]);
                    *n += take;
                    at += take;
                    if *n == 9 {
                        let h = FrameHeader::parse(buf);
                        match h.kind {
                            HEADERS | PUSH_PROMISE | CONTINUATION => self.in_header_block = h.flags & END_HEADERS == 0,
                            _ => {}
                        }
                        frame(h);
                        self.state = State::Payload(h.len);
                    }
                }
                State::Payload(left) => {
                    let take = (*left as usize).min(data.len() - at);
                    *left -= take as u32;
                    at += take;
                }
            }
            if let State::Payload(0) = self.state {
                self.state = State::Header([0; 9], 0);
                self.started = true;
                if stop_at_boundary && self.at_boundary() {
                    return at;
                }
            }
        }
        at
    }
}

/// What to write for one chunk, in order: ranges of the chunk's own bytes, and frames of the proxy's own between them.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    Bytes(std::ops::Range<usize>),
    Frames(Vec<u8>),
}

/// One proxied connection, both directions: where each is, and the frames
/// waiting for a boundary to go in. Direction 0 is client to server, 1 server to client.
#[derive(Debug)]
pub(crate) struct Conn {
    framers: [Framer; 2],
    pending: [Vec<u8>; 2],
    /// The newest stream the client opened.
    newest: u32,
    /// A GOAWAY (code, debug data) waiting for the client's next stream, which it refuses.
    armed: Option<(u32, Vec<u8>)>,
}

/// Frames waiting in one direction are bounded: a stream that never reaches a boundary gets no more.
const MAX_PENDING: usize = 64 * 1024;

impl Default for Conn {
    fn default() -> Conn {
        Conn {
            framers: [Framer::client(), Framer::server()],
            pending: [Vec::new(), Vec::new()],
            newest: 0,
            armed: None,
        }
    }
}

impl Conn {
    /// Passes a chunk read from side `from` through, into `out`. With `rst`
    /// (a fraction and an error code), each new stream the client opens is
    /// drawn for a reset in both directions; returns how many were.
    pub(crate) fn pass(&mut self, from: usize, data: &[u8], rst: Option<(f64, u32)>, out: &mut Vec<Piece>) -> u64 {
        let Conn {
            framers,
            pending,
            newest,
            armed,
        } = self;
        let mut resets = 0;
        let mut at = 0;
        while at < data.len() {
            let split = !pending[from].is_empty();
            let n = framers[from].advance(&data[at..], split, |h| {
                let new_stream = from == 0 && h.kind == HEADERS && h.stream % 2 == 1 && h.stream > *newest;
                if !new_stream {
                    return;
                }
                *newest = h.stream;
                if let Some((code, debug)) = armed.take() {
                    // The GOAWAY crosses this request: the stream before it is the last one served.
                    pending[1].extend(goaway(h.stream.saturating_sub(2), code, &debug));
                }
                match rst {
                    Some((fraction, code)) if super::random() < fraction => {
                        for p in pending.iter_mut().filter(|p| p.len() < MAX_PENDING) {
                            p.extend(rst_stream(h.stream, code));
                        }
                        resets += 1;
                    }
                    _ => {}
                }
            });
            out.push(Piece::Bytes(at..at + n));
            at += n;
            if let Some(frames) = self_ready(&framers[from], &mut pending[from]) {
                out.push(Piece::Frames(frames));
            }
        }
        resets
    }

    /// Queues a GOAWAY to the client; `last` None names the newest stream the client opened.
    /// With `on_next_stream`, it waits for the client's next stream and refuses it.
    pub(crate) fn goaway(&mut self, last: Option<u32>, code: u32, debug: &[u8], on_next_stream: bool) {
        if on_next_stream {
            self.armed = Some((code, debug.to_vec()));
        } else if !self.framers[1].is_opaque() && self.pending[1].len() < MAX_PENDING {
            self.pending[1].extend(goaway(last.unwrap_or(self.newest), code, debug));
        }
    }

    /// Frames queued in direction `d` that may go now (its stream is between frames).
    pub(crate) fn ready(&mut self, d: usize) -> Option<Vec<u8>> {
        self_ready(&self.framers[d], &mut self.pending[d])
    }
}

fn self_ready(framer: &Framer, pending: &mut Vec<u8>) -> Option<Vec<u8>> {
    (framer.at_boundary() && !pending.is_empty()).then(|| std::mem::take(pending))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(stream: u32, end_headers: bool, len: usize) -> Vec<u8> {
        frame(
            HEADERS,
            if end_headers { END_HEADERS } else { 0 },
            stream,
            &vec![0xaa; len],
        )
    }

    #[test]
    fn finds_every_boundary_however_the_bytes_are_split() {
        let mut stream = PREFACE.to_vec();
        stream.extend(frame(0x4, 0, 0, &[0; 6])); // SETTINGS
        stream.extend(headers(1, false, 5));
        stream.extend(frame(CONTINUATION, END_HEADERS, 1, &[1, 2]));
        stream.extend(frame(0x0, 0x1, 1, &[7; 40])); // DATA, END_STREAM
        for chunk in 1..stream.len() {
            let mut f = Framer::client();
            let (mut seen, mut boundaries, mut at) = (Vec::new(), Vec::new(), 0);
            for piece in stream.chunks(chunk) {
                let mut rest = piece;
                while !rest.is_empty() {
                    let n = f.advance(rest, true, |h| seen.push((h.kind, h.stream)));
                    at += n;
                    rest = &rest[n..];
                    if f.at_boundary() {
                        boundaries.push(at);
                    }
                }
            }
            assert_eq!(
                seen,
                [(0x4, 0), (HEADERS, 1), (CONTINUATION, 1), (0x0, 1)],
                "chunk {chunk}"
            );
            // After SETTINGS (not before: it comes first), after the header block (not inside it), after DATA.
            boundaries.dedup();
            assert_eq!(boundaries, [39, 64, 113], "chunk {chunk}");
        }
    }

    #[test]
    fn leaves_what_is_not_http2_alone() {
        let mut f = Framer::client();
        let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(f.advance(req, true, |_| panic!("no frames in HTTP/1")), req.len());
        assert!(f.is_opaque() && !f.at_boundary());
    }

    #[test]
    fn builds_goaway_and_rst_stream_frames() {
        let g = goaway(7, 11, b"too_many_pings");
        let h = FrameHeader::parse(g[..9].try_into().unwrap());
        assert_eq!((h.len, h.kind, h.stream), (22, GOAWAY, 0));
        assert_eq!(&g[9..17], &[0, 0, 0, 7, 0, 0, 0, 11]);
        assert_eq!(&g[17..], b"too_many_pings");
        assert_eq!(rst_stream(3, 8), [0, 0, 4, RST_STREAM, 0, 0, 0, 0, 3, 0, 0, 0, 8]);
    }
}
