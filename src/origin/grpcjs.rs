//! grpc-js's channels in the channel ledger: the table the Node part of the
//! native agent (`native/node.c`) keeps, filled by the script fdsoak puts on
//! Node's `--require` (`grpcjs_ledger.js`). Per site, the JavaScript stack that
//! made a grpc-js Channel (a Client makes one), the target, and how many were
//! made there and closed.
//!
//! The memory is the process's to write: every figure is bounded before use,
//! and anything malformed ends the reading, never the run.

use crate::domain::Frame;
use crate::origin::memory::{c_str, slot_head, LedgerLayout, SLOT_HEAD};

/// The script Node is given with `--require`.
pub const LEDGER_SCRIPT: &str = include_str!("grpcjs_ledger.js");
/// Its file name under the agents' directory.
pub const LEDGER_FILE: &str = "node/grpcjs_ledger.js";

/// The table `native/node.c` keeps: each slot's body is the stack's text.
const LEDGER: LedgerLayout = LedgerLayout {
    mapping: "fdsoak-nchannels",
    magic: b"FDSOAKN1",
    max_slots: 4096,
    unit: 1,
    max_units: 16 << 10,
    max_target: 1024,
};

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
    let t = LEDGER.read(pid)?;
    Some(t.bytes.chunks_exact(t.size).filter_map(|s| site(s, t.units)).collect())
}

/// One slot, if it holds a site whose text is written.
fn site(s: &[u8], text: usize) -> Option<ChannelSite> {
    let head = slot_head(s)?;
    let frames = c_str(s.get(SLOT_HEAD..SLOT_HEAD + text)?)
        .lines()
        .filter_map(frame)
        .collect::<Vec<_>>();
    Some(ChannelSite {
        target: c_str(s.get(SLOT_HEAD + text..)?),
        frames,
        created: head.created,
        closed: head.closed,
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

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: usize = 256;

    fn slot(text: &str, target: &str, created: u64, closed: u64) -> Vec<u8> {
        let mut s = vec![0u8; SLOT_HEAD + TEXT + 16];
        s[..8].copy_from_slice(&7u64.to_le_bytes());
        s[8..12].copy_from_slice(&1u32.to_le_bytes());
        s[16..24].copy_from_slice(&created.to_le_bytes());
        s[24..32].copy_from_slice(&closed.to_le_bytes());
        s[SLOT_HEAD..SLOT_HEAD + text.len()].copy_from_slice(text.as_bytes());
        s[SLOT_HEAD + TEXT..SLOT_HEAD + TEXT + target.len()].copy_from_slice(target.as_bytes());
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
