//! Build steps besides Rust: the gRPC client and server code from `proto/`
//! with protox (no system `protoc`), and the native origin agent, a shared
//! library compiled from `src/origin/native/agent.c`, `jvm.c` and `node.c` with the C compiler the
//! `cc` crate finds, which fdsoak carries inside its binary.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let protos = [
        "proto/grpc/health/v1/health.proto",
        "proto/fdsoak/demo/v1/chatbot.proto",
    ];
    let fds = protox::compile(protos, ["proto"])?;
    // The descriptors themselves, for server reflection and for tests of dynamic messages.
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("fdsoak_descriptors.bin"), prost::Message::encode_to_vec(&fds))?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    native_agent(&out)
}

/// `libfdsoak_origin.so`: position-independent, optimised, its own frames kept
/// (so that the stacks it records start cleanly), linked against libdl for dlsym.
/// Warnings are shown, never errors: a user's newer compiler may warn where this
/// one does not. `.ci/run` compiles it with `-Werror` to keep it warning-free here.
fn native_agent(out: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let source = "src/origin/native/agent.c";
    let jvm = "src/origin/native/jvm.c";
    let node = "src/origin/native/node.c";
    for file in [source, jvm, node] {
        println!("cargo:rerun-if-changed={file}");
    }
    let compiler = cc::Build::new().cargo_metadata(false).get_compiler();
    let status = compiler
        .to_command()
        .args(["-shared", "-fPIC", "-O2", "-fno-omit-frame-pointer", "-Wall", "-o"])
        .arg(out.join("libfdsoak_origin.so"))
        .args([source, jvm, node])
        .args(["-ldl", "-lpthread"])
        .status()?;
    if !status.success() {
        return Err(format!("compiling {source} failed ({status})").into());
    }
    Ok(())
}
