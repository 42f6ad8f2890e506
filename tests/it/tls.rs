//! TLS and metadata against real servers: `fdsoak serve --tls-*` with
//! certificates made here by rcgen (no key is committed), right and wrong
//! CAs, plaintext against TLS, mutual TLS, and a token that must never reach
//! any output of the run.

use crate::common::*;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// A CA, a server certificate for 127.0.0.1 and a client certificate it signed, and a second, unrelated CA.
pub(crate) struct Pki {
    dir: TempDir,
}

impl Pki {
    pub(crate) fn new() -> Pki {
        let dir = TempDir::new("pki");
        let ca = |name: &str| {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.distinguished_name.push(rcgen::DnType::CommonName, name);
            CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
        };
        let (good, other) = (ca("fdsoak test CA"), ca("another CA"));
        dir.write("ca.pem", &good.pem());
        dir.write("other-ca.pem", &other.pem());
        for (name, sans) in [
            ("server", vec!["127.0.0.1".to_string(), "localhost".into()]),
            ("client", vec!["client".into()]),
        ] {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(sans).unwrap().signed_by(&key, &good).unwrap();
            dir.write(&format!("{name}.pem"), &cert.pem());
            dir.write(&format!("{name}.key"), &key.serialize_pem());
        }
        Pki { dir }
    }

    pub(crate) fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    /// `fdsoak serve` over TLS; with `mtls`, it requires a client certificate from the CA.
    pub(crate) fn server(&self, mtls: bool) -> Server {
        let (cert, key, ca) = (self.path("server.pem"), self.path("server.key"), self.path("ca.pem"));
        let mut args = vec!["--tls-cert", &cert, "--tls-key", &key];
        if mtls {
            args.extend(["--client-ca", &ca]);
        }
        Server::start(&args)
    }
}

fn short() -> std::path::PathBuf {
    repo("tests/scenarios/churn-short.toml")
}

#[test]
fn tls_with_the_right_ca_passes_and_the_wrong_ca_or_plaintext_fail_clearly() {
    let pki = Pki::new();
    let server = pki.server(false);
    let addr = server.addr.to_string();
    let r = run(&short(), &["--target", &addr, "--cacert", &pki.path("ca.pem")]);
    assert_eq!(r.code, 0, "{}", r.context());
    assert!(r.summary().workloads[0].ok >= 150, "{}", r.context());

    // The wrong CA: a clear error, within the ready timeout, exit 3.
    let start = std::time::Instant::now();
    let r = run(&short(), &["--target", &addr, "--cacert", &pki.path("other-ca.pem")]);
    assert_eq!(r.code, 3, "{}", r.context());
    let e = r.finding("run", "run_error");
    assert!(
        e.contains("presented a certificate fdsoak does not trust (UnknownIssuer)"),
        "{e}"
    );
    assert!(e.contains("--cacert"), "{e}");
    // At once: a certificate does not change by waiting.
    assert!(
        start.elapsed() < std::time::Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );

    // Plaintext against TLS: named for what it is, at once.
    let r = run(&short(), &["--target", &addr]);
    assert_eq!(r.code, 3, "{}", r.context());
    let e = r.finding("run", "run_error");
    assert!(e.contains("speaks TLS"), "{e}");

    // Without a CA, but told to skip verification: encrypted, unauthenticated, and it works.
    let r = run(&short(), &["--target", &addr, "--insecure"]);
    assert_eq!(r.code, 0, "{}", r.context());
}

#[test]
fn mutual_tls_needs_the_client_certificate() {
    let pki = Pki::new();
    let server = pki.server(true);
    let addr = server.addr.to_string();
    let ca = pki.path("ca.pem");
    let (cert, key) = (pki.path("client.pem"), pki.path("client.key"));
    let r = run(
        &short(),
        &["--target", &addr, "--cacert", &ca, "--cert", &cert, "--key", &key],
    );
    assert_eq!(r.code, 0, "{}", r.context());
    let r = run(&short(), &["--target", &addr, "--cacert", &ca]);
    assert_eq!(r.code, 3, "without a client certificate: {}", r.context());
    let e = r.finding("run", "run_error");
    assert!(e.contains("did not answer a health check"), "{e}");
    assert!(
        e.contains("if it requires a client certificate, give [tls] cert and key"),
        "{e}"
    );
}

#[test]
fn a_token_and_a_key_path_never_reach_any_output() {
    let pki = Pki::new();
    let server = pki.server(true);
    let dir = TempDir::new("secret");
    // A scenario with [tls] and metadata from the environment, and an rpc workload through reflection.
    let token = "tok-9f8e7d6c5b4a";
    let s = dir.write(
        "secret.toml",
        &format!(
            r#"name = "secret"
metadata = {{ authorization = "Bearer ${{FDSOAK_TEST_TOKEN}}", x-team = "literal-s3cret-value" }}

[tls]
ca = "{ca}"
cert = "{cert}"
key = "{key}"
proxy_cert = "{proxy_cert}"
proxy_key = "{proxy_key}"

[sampler]
interval = "100ms"

[[phases]]
name = "load"
duration = "2s"

  [[phases.workloads]]
  kind = "health_check"
  rate = 20

  [[phases.workloads]]
  kind = "rpc"
  method = "fdsoak.demo.v1.Chatbot/Ask"
  rate = 20

  # Through the proxy, which ends TLS with its own key, and starts it again with the client's.
  [[phases.faults]]
  kind = "latency"
  latency = "1ms"

[[phases]]
name = "drain"
duration = "1s"
"#,
            ca = pki.path("ca.pem"),
            cert = pki.path("client.pem"),
            key = pki.path("client.key"),
            proxy_cert = pki.path("server.pem"),
            proxy_key = pki.path("server.key"),
        ),
    );
    let out = TempDir::new("secret-report");
    let o = std::process::Command::new(FDSOAK)
        .arg("run")
        .arg(&s)
        .args(["--target", &server.addr.to_string(), "--out"])
        .arg(out.path())
        .args(["-H", "x-extra: header-s3cret"])
        .env("FDSOAK_TEST_TOKEN", token)
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{stderr}");
    let summary = read_summary(out.path());
    assert!(
        summary.workloads.iter().all(|w| w.ok > 0 && w.errors == 0),
        "{summary:?}"
    );
    assert!(
        summary.proxy.as_ref().is_some_and(|p| p.accepted >= 1),
        "{:?}",
        summary.proxy
    );
    let secrets = [
        token,
        "literal-s3cret-value",
        "header-s3cret",
        "client.key",
        "server.key",
    ];
    let mut texts = vec![
        ("stdout".to_string(), stdout.into_owned()),
        ("stderr".into(), stderr.into_owned()),
    ];
    for entry in std::fs::read_dir(out.path()).unwrap() {
        let p = entry.unwrap().path();
        texts.push((
            p.display().to_string(),
            String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned(),
        ));
    }
    assert!(texts.len() >= 8, "every report file was read: {}", texts.len());
    for (name, text) in &texts {
        for s in secrets {
            assert!(!text.contains(s), "{s:?} found in {name}");
        }
    }
    // Only the keys are shown.
    let json = std::fs::read_to_string(out.path().join("summary.json")).unwrap();
    assert!(json.contains("authorization") && json.contains("<redacted>"), "{json}");
}

#[test]
fn tls_and_metadata_mistakes_are_located_errors_that_show_no_secret() {
    let dir = TempDir::new("tls-bad");
    let scenario = |extra: &str| {
        let text = std::fs::read_to_string(short())
            .unwrap()
            .replace("[sampler]", &format!("{extra}\n[sampler]"));
        dir.write("bad.toml", &text)
    };
    let cases = [
        (
            "metadata = { authorization = \"Bearer ${FDSOAK_TEST_UNSET_TOKEN}\" }",
            "key `metadata.authorization`: the environment variable FDSOAK_TEST_UNSET_TOKEN is not set",
        ),
        (
            "[tls]\nca = \"no-such-ca.pem\"\n",
            "key `tls.ca`: no-such-ca.pem: no such file",
        ),
        (
            "[tls]\ncert = \"c.pem\"\n",
            "key `tls.key`: mutual TLS needs both cert and key",
        ),
        (
            "[tls]\ncert = \"bad.toml\"\nkey = \"/secret/dir/client.key\"\n",
            "key `tls.key`: no such file (the path is not shown)",
        ),
    ];
    for (extra, expect) in cases {
        let s = scenario(extra);
        let o = std::process::Command::new(FDSOAK)
            .arg("run")
            .arg(&s)
            .args(["-q", "--out"])
            .arg(dir.path().join("out"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra}: {err}");
        assert!(err.contains("bad.toml:") && err.contains(expect), "{extra}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!err.contains("/secret/dir"), "the key's path is not shown: {err}");
    }
}

/// TLS over a Unix socket: no host, so the name verified (and the authority sent)
/// is `localhost` unless `--servername` gives another.
#[test]
fn tls_over_a_unix_socket_verifies_the_name_it_is_given() {
    let pki = Pki::new();
    let spawn = format!(
        "{{fdsoak}} serve --listen unix://{{socket}} --tls-cert {} --tls-key {}",
        pki.path("server.pem"),
        pki.path("server.key")
    );
    let ca = pki.path("ca.pem");
    let r = run(&short(), &["--spawn", &spawn, "--cacert", &ca]);
    assert_eq!(r.code, 0, "{}", r.context());
    assert!(r.summary().workloads[0].ok >= 150, "{}", r.context());
    let r = run(
        &short(),
        &["--spawn", &spawn, "--cacert", &ca, "--servername", "elsewhere.example"],
    );
    assert_eq!(r.code, 3, "the certificate is not for that name: {}", r.context());
    assert!(r.finding("run", "run_error").contains("certificate"), "{}", r.context());
}
