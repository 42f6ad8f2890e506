//! A process's own words for running out of descriptors. Every runtime says it
//! its own way: glibc's `strerror` ("Too many open files", and "… in system"
//! for the whole host), Go (`accept4: too many open files`), Java and Netty
//! (`java.net.SocketException: Too many open files`), Python
//! (`[Errno 24] Too many open files`), Node and libuv (`EMFILE: too many open
//! files`, `ENFILE: file table overflow`). [`complaint`] tells a line that
//! says so, and which of the two limits it hit.

/// Which limit a process said it hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Complaint {
    /// EMFILE: its own RLIMIT_NOFILE.
    Emfile,
    /// ENFILE: the host's table of open files.
    Enfile,
}

impl Complaint {
    /// The words glibc gives it, which the report quotes.
    pub fn words(self) -> &'static str {
        match self {
            Complaint::Emfile => "Too many open files",
            Complaint::Enfile => "Too many open files in system",
        }
    }
}

/// The complaint `line` makes, if it says a descriptor limit was hit.
pub(crate) fn complaint(line: &str) -> Option<Complaint> {
    let lower = line.to_ascii_lowercase();
    if lower.contains("too many open files in system")
        || has_word(&lower, "enfile")
        || lower.contains("file table overflow")
        || has_errno(&lower, 23)
    {
        return Some(Complaint::Enfile);
    }
    if lower.contains("too many open files") || has_word(&lower, "emfile") || has_errno(&lower, 24) {
        return Some(Complaint::Emfile);
    }
    None
}

/// Whether `word` stands in `text` on its own, not inside a longer name.
fn has_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// Whether `text` names errno `n` (`[Errno 24]`, `errno 24`, `errno=24`, `errno: 24`).
fn has_errno(text: &str, n: u32) -> bool {
    text.match_indices("errno").any(|(i, _)| {
        let rest = text[i + 5..].trim_start_matches([' ', '=', ':']);
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse() == Ok(n)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_runtime_s_words() {
        let emfile = [
            "accept tcp [::]:8080: accept4: too many open files; retrying in 5ms",
            "java.net.SocketException: Too many open files",
            "io.netty.channel.unix.Errors$NativeIoException: accept(..) failed: Too many open files",
            "OSError: [Errno 24] Too many open files: '/etc/hostname'",
            "Error: EMFILE: too many open files, open '/etc/hostname'",
            "Error: accept EMFILE",
            "socket: errno=24",
        ];
        for line in emfile {
            assert_eq!(complaint(line), Some(Complaint::Emfile), "{line}");
        }
        let enfile = [
            "open: Too many open files in system",
            "Error: ENFILE: file table overflow, open 'x'",
            "OSError: [Errno 23] Too many open files in system",
        ];
        for line in enfile {
            assert_eq!(complaint(line), Some(Complaint::Enfile), "{line}");
        }
        let neither = [
            "listening on 127.0.0.1:5000",
            "set RLIMIT_NOFILE=1024 (open files)",
            "errno 240 is not a thing",
            "TEMFILES=3",
            "opened 24 files",
        ];
        for line in neither {
            assert_eq!(complaint(line), None, "{line}");
        }
    }
}
