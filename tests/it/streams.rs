//! Client-streaming and bidirectional methods through the `rpc` workload,
//! against the built-in target's Chat (bidi, a session file per live
//! stream) and Tally (client-streaming): descriptors from the protos and
//! from reflection give the same counts; the Chat leak knob is flagged with
//! its group; abandoned streams show as the server's growth while
//! half-closed ones pass; keys that do not apply are located errors.

use crate::common::*;

/// Chat and Tally at 20 streams/s for 3 s; `extra` goes into the Chat workload.
fn scenario(dir: &TempDir, protos: bool, extra: &str) -> std::path::PathBuf {
    let protos = if protos {
        format!(
            "  protos = [\"{}\"]\n",
            repo("proto/fdsoak/demo/v1/chatbot.proto").display()
        )
    } else {
        String::new()
    };
    dir.write(
        "streams.toml",
        &format!(
            "name = \"streams\"\n[sampler]\ninterval = \"100ms\"\n\
             [[phases]]\nname = \"baseline\"\nduration = \"1s\"\n\
             [[phases]]\nname = \"load\"\nduration = \"3s\"\n\
               [[phases.workloads]]\n  kind = \"rpc\"\n  name = \"chat\"\n  method = \"fdsoak.demo.v1.Chatbot/Chat\"\n{protos}\
               data = '[{{\"message\": \"hi {{{{request_number}}}}\"}}, {{\"message\": \"and\"}}, {{\"message\": \"bye\"}}]'\n\
               send_interval = \"1ms\"\n  rate = 20\n{extra}\n\
               [[phases.workloads]]\n  kind = \"rpc\"\n  name = \"tally\"\n  method = \"fdsoak.demo.v1.Chatbot/Tally\"\n{protos}\
               data = '[{{\"user\": \"b\"}}, {{\"user\": \"b\"}}, {{\"user\": \"b\"}}, {{\"user\": \"b\"}}]'\n  rate = 20\n\
             [[phases]]\nname = \"drain\"\nduration = \"2s\"\n"
        ),
    )
}

/// (name, ok, errors, messages) of every workload.
fn counts(r: &RunResult) -> Vec<(String, u64, u64, u64)> {
    r.summary()
        .workloads
        .iter()
        .map(|w| (w.name.clone(), w.ok, w.errors, w.messages))
        .collect()
}

#[test]
fn protos_and_reflection_agree_on_every_count_of_client_and_bidi_streams() {
    let dir = TempDir::new("streams-counts");
    let with_protos = run(&scenario(&dir, true, ""), &[]);
    assert_eq!(with_protos.code, 0, "{}", with_protos.context());
    let reflected = run(&scenario(&dir, false, ""), &[]);
    assert_eq!(reflected.code, 0, "{}", reflected.context());
    let want = vec![("chat".to_string(), 60, 0, 180), ("tally".to_string(), 60, 0, 60)];
    assert_eq!(counts(&with_protos), want, "{}", with_protos.context());
    assert_eq!(counts(&reflected), want, "{}", reflected.context());
}

#[test]
fn the_chat_leak_knob_is_flagged_with_its_group() {
    let dir = TempDir::new("streams-leak");
    let serve = "{fdsoak} serve --port {port} --leak-chat-file";
    let r = run(&scenario(&dir, true, ""), &["--spawn", serve]);
    assert_eq!(r.code, 1, "{}", r.context());
    let top = r.top_group("target");
    assert!(top.change >= 50 && top.what.ends_with("fdsoak"), "{top:?}");
}

#[test]
fn abandoned_streams_grow_the_server_and_half_closed_ones_do_not() {
    let dir = TempDir::new("streams-abandon");
    let r = run(&scenario(&dir, true, "  hangup = \"abandon\""), &[]);
    assert_eq!(r.code, 1, "{}", r.context());
    assert!(
        r.finding_kinds("target").contains(&"fd_growth".to_string()),
        "{}",
        r.context()
    );
    let cancelled = run(&scenario(&dir, true, "  hangup = \"cancel\""), &[]);
    assert_eq!(cancelled.code, 0, "{}", cancelled.context());
    for _ in 0..2 {
        let r = run(&scenario(&dir, true, "  hangup = \"half_close\""), &[]);
        assert_eq!(r.code, 0, "{}", r.context());
    }
}

#[test]
fn stream_keys_that_do_not_apply_are_located_errors() {
    let dir = TempDir::new("streams-keys");
    let sc = dir.write(
        "unary.toml",
        &format!(
            "name = \"x\"\n[[phases]]\nname = \"p\"\nduration = \"1s\"\n\
               [[phases.workloads]]\n  kind = \"rpc\"\n  method = \"fdsoak.demo.v1.Chatbot/Ask\"\n\
               protos = [\"{}\"]\n  rate = 1\n  hangup = \"cancel\"\n",
            repo("proto/fdsoak/demo/v1/chatbot.proto").display()
        ),
    );
    let err = refused(&sc);
    assert!(
        err.contains("unary.toml:") && err.contains("hangup") && err.contains("client-streaming"),
        "{err}"
    );
    let sc = dir.write(
        "watch.toml",
        "name = \"x\"\n[[phases]]\nname = \"p\"\nduration = \"1s\"\n\
           [[phases.workloads]]\n  kind = \"watch\"\n  send_interval = \"1s\"\n",
    );
    let err = refused(&sc);
    assert!(err.contains("send_interval"), "{err}");
}

/// `fdsoak validate` on `sc`: it must refuse with exit 2; what it said.
fn refused(sc: &std::path::Path) -> String {
    let out = std::process::Command::new(FDSOAK)
        .arg("validate")
        .arg(sc)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    err
}
