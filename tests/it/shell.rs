//! What a CLI user's shell expects: `fdsoak completions SHELL` prints a
//! script the shell accepts, naming every subcommand and their flags, and
//! `fdsoak man` a man page that renders, with an unknown shell a usage error.

use crate::common::*;
use std::process::Command;

fn fdsoak(args: &[&str]) -> std::process::Output {
    Command::new(FDSOAK).args(args).output().unwrap()
}

#[test]
fn completions_are_scripts_the_shell_takes_and_the_man_page_renders() {
    let dir = TempDir::new("shell");
    let bash = fdsoak(&["completions", "bash"]);
    assert_eq!(bash.status.code(), Some(0));
    let script = String::from_utf8(bash.stdout).unwrap();
    for word in [
        "run",
        "compare",
        "trend",
        "completions",
        "--spawn",
        "--leak-backend-on-retry",
    ] {
        assert!(script.contains(word), "no {word:?} in the bash completions");
    }
    let file = dir.write("fdsoak.bash", &script);
    // bash reads it without a syntax error, and it registers the completion.
    let check = Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p fdsoak", file.display()))
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let o = fdsoak(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}");
        assert!(String::from_utf8_lossy(&o.stdout).contains("--spawn"), "{shell}");
    }
    let o = fdsoak(&["completions", "nushell"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("possible values"));

    let man = fdsoak(&["man"]);
    assert_eq!(man.status.code(), Some(0));
    let page = dir.write("fdsoak.1", &String::from_utf8(man.stdout).unwrap());
    let text = std::fs::read_to_string(&page).unwrap();
    assert!(text.starts_with(".ie") && text.contains(".TH fdsoak 1"), "{text:.200}");
    if Command::new("groff").arg("--version").output().is_err() {
        tool_missing("groff", ".ci/run installs groff-base");
        return;
    }
    let rendered = Command::new("groff")
        .args(["-man", "-Tutf8", "-P-cbou"])
        .arg(&page)
        .output()
        .unwrap();
    let rendered = String::from_utf8_lossy(&rendered.stdout);
    for word in ["NAME", "SUBCOMMANDS", "fdsoak-run", "Exit codes"] {
        assert!(rendered.contains(word), "no {word:?} in the rendered page:\n{rendered}");
    }
}
