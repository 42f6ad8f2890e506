//! Generates the gRPC client and server code from `proto/` with protox, so no system `protoc` is needed.
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
    Ok(())
}
