//! grpc-js's channels in the channel ledger: the table the Node part of the
//! native agent (`native/node.c`) keeps, filled by the script fdsoak puts on
//! Node's `--require` (`grpcjs_ledger.js`). Per site, the JavaScript stack that
//! made a grpc-js Channel (a Client makes one), the target, and how many were
//! made there and closed.
//!
//! The memory is the process's to write: every figure is bounded before use,
//! and anything malformed ends the reading, never the run.

use crate::domain::Frame;
use crate::origin::memory::{find, read_remote, u32_at, u64_at};

/// The script Node is given with `--require`.
pub const LEDGER_SCRIPT: &str = include_str!("grpcjs_ledger.js");
/// Its file name under the agents' directory.
pub const LEDGER_FILE: &str = "node/grpcjs_ledger.js";

const MAPPING: &str = "fdsoak-nchannels";
const MAGIC: &[u8; 8] = b"FDSOAKN1";
const HEADER: usize = 64;
const MAX_SITES: usize = 4096;
const MAX_TEXT: usize = 16 << 10;
const MAX_TARGET: usize = 1024;
/// The fixed part of a site: hash, ready, pad, created, closed.
const SITE_HEAD: usize = 32;

/// A place grpc-js channels were made: its frames (innermost first), the target, and
/// how many were made there and closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSite {
    pub target: String,
    pub frames: Vec<Frame>,
    pub created: u64,
    pub closed: u64,
}

/// The channel sites in `pid`'s ledger; None: the process keeps none.
pub fn channel_sites(pid: i32) -> Option<Vec<ChannelSite>> {
    let base = find(pid, MAPPING)?;
    let mut head = [0u8; HEADER];
    if !read_remote(pid, &[(base, HEADER)], &mut head) || &head[..8] != MAGIC || u32_at(&head, 8)? != 1 {
        return None;
    }
    let sites = (u32_at(&head, 12)? as usize).min(MAX_SITES);
    let text = (u32_at(&head, 16)? as usize).min(MAX_TEXT);
    let target = (u32_at(&head, 20)? as usize).min(MAX_TARGET);
    let size = SITE_HEAD + text + target;
    let mut all = vec![0u8; sites * size];
    if !read_remote(pid, &[(base + HEADER, all.len())], &mut all) {
        return None;
    }
    Some(all.chunks_exact(size).filter_map(|s| site(s, text)).collect())
}

/// One slot, if it holds a site whose text is written.
fn site(s: &[u8], text: usize) -> Option<ChannelSite> {
    if u64_at(s, 0)? == 0 || u32_at(s, 8)? != 1 {
        return None;
    }
    let frames = c_str(s.get(SITE_HEAD..SITE_HEAD + text)?)
        .lines()
        .filter_map(frame)
        .collect::<Vec<_>>();
    Some(ChannelSite {
        target: c_str(s.get(SITE_HEAD + text..)?),
        frames,
        created: u64_at(s, 16)?,
        closed: u64_at(s, 24)?,
    })
}

/// "function\tfile\tline", as the script writes a frame.
fn frame(line: &str) -> Option<Frame> {
    let mut parts = line.split('\t');
    let (function, file, at) = (parts.next()?, parts.next()?, parts.next()?);
    Some(Frame {
        function: function.to_string(),
        file: file.to_string(),
        line: at.parse().unwrap_or(0),
        library: file.is_empty() || super::perfmap::is_node_library(file),
    })
}

fn c_str(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: usize = 256;

    fn slot(text: &str, target: &str, created: u64, closed: u64) -> Vec<u8> {
        let mut s = vec![0u8; SITE_HEAD + TEXT + 16];
        s[..8].copy_from_slice(&7u64.to_le_bytes());
        s[8..12].copy_from_slice(&1u32.to_le_bytes());
        s[16..24].copy_from_slice(&created.to_le_bytes());
        s[24..32].copy_from_slice(&closed.to_le_bytes());
        s[SITE_HEAD..SITE_HEAD + text.len()].copy_from_slice(text.as_bytes());
        s[SITE_HEAD + TEXT..SITE_HEAD + TEXT + target.len()].copy_from_slice(target.as_bytes());
        s
    }

    #[test]
    fn reads_a_site_s_frames_with_the_library_s_marked() {
        let text = "Client\t/srv/node_modules/@grpc/grpc-js/build/src/client.js\t66\naskSelf\t/srv/server.js\t31\n\
                    emit\tnode:events\t519";
        let s = site(&slot(text, "127.0.0.1:50051", 4, 1), TEXT).unwrap();
        assert_eq!((s.created, s.closed, s.target.as_str()), (4, 1, "127.0.0.1:50051"));
        let named: Vec<_> = s
            .frames
            .iter()
            .map(|f| (f.function.as_str(), f.line, f.library))
            .collect();
        assert_eq!(
            named,
            [("Client", 66, true), ("askSelf", 31, false), ("emit", 519, true)]
        );
    }

    #[test]
    fn a_slot_not_ready_or_cut_short_is_not_a_site() {
        let mut s = slot("askSelf\t/srv/server.js\t31", "t", 1, 0);
        s[8] = 0;
        assert_eq!(site(&s, TEXT), None);
        assert_eq!(site(&slot("a\tb\t1", "t", 1, 0)[..20], TEXT), None);
        // A frame without its three parts is passed over, not misread.
        let s = site(&slot("broken\nf\t/x.js\tnotanumber", "t", 1, 0), TEXT).unwrap();
        assert_eq!(s.frames.len(), 1);
        assert_eq!(s.frames[0].line, 0);
    }
}
