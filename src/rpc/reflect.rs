//! Descriptors from the server itself, through gRPC server reflection: the
//! file that defines each service asked for, then every file it imports,
//! until the set is complete. `grpc.reflection.v1` first, `v1alpha` when the
//! server answers UNIMPLEMENTED (grpcio and older servers serve only that).
//! The well-known `google/protobuf/*` files come from protox when the server
//! does not send them.

use crate::transport::conn::Conn as Channel;
use crate::transport::Transport;
use prost::Message;
use prost_reflect::prost_types::FileDescriptorProto;
use prost_reflect::DescriptorPool;
use std::collections::BTreeMap;

/// At most this many files are fetched; a bigger closure is refused rather than followed forever.
const MAX_FILES: usize = 500;

/// What to ask the server for.
enum Ask {
    Symbol(String),
    File(String),
}

/// One request, one reply, on the given version of the reflection service.
macro_rules! ask_on {
    ($name:ident, $pb:ident) => {
        async fn $name(channel: Channel, ask: &Ask, transport: &Transport) -> Result<Vec<Vec<u8>>, tonic::Status> {
            use tonic_reflection::pb::$pb::server_reflection_client::ServerReflectionClient;
            use tonic_reflection::pb::$pb::server_reflection_request::MessageRequest;
            use tonic_reflection::pb::$pb::server_reflection_response::MessageResponse;
            use tonic_reflection::pb::$pb::ServerReflectionRequest;
            let message_request = match ask {
                Ask::Symbol(s) => MessageRequest::FileContainingSymbol(s.clone()),
                Ask::File(f) => MessageRequest::FileByFilename(f.clone()),
            };
            let req = ServerReflectionRequest {
                host: String::new(),
                message_request: Some(message_request),
            };
            let mut request = tonic::Request::new(tokio_stream::iter([req]));
            transport.decorate(&mut request);
            let mut replies = ServerReflectionClient::new(channel)
                .server_reflection_info(request)
                .await?
                .into_inner();
            match replies.message().await?.and_then(|r| r.message_response) {
                Some(MessageResponse::FileDescriptorResponse(f)) => Ok(f.file_descriptor_proto),
                Some(MessageResponse::ErrorResponse(e)) => Err(tonic::Status::new(
                    tonic::Code::from(e.error_code),
                    e.error_message,
                )),
                _ => Err(tonic::Status::internal("an unexpected reflection reply")),
            }
        }
    };
}

ask_on!(ask_v1, v1);
ask_on!(ask_v1alpha, v1alpha);

/// Why reflection gave no descriptors.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The scenario asks for what the server does not have (no reflection, an unknown service).
    Scenario(String),
    /// The server or the connection failed: a run error, with the gRPC code and a hint.
    Target(String),
}

/// The descriptors of `services` and everything they import, from the server on `channel`.
pub(crate) async fn fetch(
    channel: Channel,
    services: &[String],
    transport: &Transport,
) -> Result<DescriptorPool, Failure> {
    let mut v1 = true;
    let mut files: BTreeMap<String, FileDescriptorProto> = BTreeMap::new();
    let mut queue: Vec<Ask> = services.iter().map(|s| Ask::Symbol(s.clone())).collect();
    while let Some(ask) = queue.pop() {
        if let Ask::File(f) = &ask {
            if files.contains_key(f) {
                continue;
            }
        }
        let mut reply = if v1 {
            ask_v1(channel.clone(), &ask, transport).await
        } else {
            ask_v1alpha(channel.clone(), &ask, transport).await
        };
        if v1 && matches!(&reply, Err(s) if s.code() == tonic::Code::Unimplemented) {
            v1 = false;
            reply = ask_v1alpha(channel.clone(), &ask, transport).await;
        }
        let protos = match (reply, &ask) {
            (Ok(p), _) => p,
            (Err(_), Ask::File(f)) if f.starts_with("google/protobuf/") => {
                vec![well_known(f).map_err(Failure::Target)?]
            }
            (Err(s), _) => return Err(explain(&s, &ask, transport)),
        };
        for bytes in protos {
            let fd = FileDescriptorProto::decode(bytes.as_slice())
                .map_err(|e| Failure::Target(format!("reflection sent a bad descriptor: {e}")))?;
            for dep in &fd.dependency {
                if !files.contains_key(dep) {
                    queue.push(Ask::File(dep.clone()));
                }
            }
            files.insert(fd.name().to_string(), fd);
        }
        if files.len() > MAX_FILES {
            return Err(Failure::Target(format!("reflection named more than {MAX_FILES} files")));
        }
    }
    let mut pool = DescriptorPool::new();
    pool.add_file_descriptor_protos(files.into_values())
        .map_err(|e| Failure::Target(format!("the descriptors reflection sent do not fit together: {e}")))?;
    Ok(pool)
}

/// A well-known type's file, from the copies protox carries.
fn well_known(name: &str) -> Result<Vec<u8>, String> {
    let mut c = protox::Compiler::new(Vec::<std::path::PathBuf>::new()).map_err(|e| e.to_string())?;
    c.open_file(name).map_err(|e| e.to_string())?;
    let set = c.file_descriptor_set();
    let file = set
        .file
        .into_iter()
        .find(|f| f.name() == name)
        .ok_or_else(|| format!("{name}: not found"))?;
    Ok(file.encode_to_vec())
}

/// What a failed reflection call means: the scenario's mistake when the server has no
/// reflection or does not know the service, otherwise the server's or the connection's.
fn explain(s: &tonic::Status, ask: &Ask, transport: &Transport) -> Failure {
    let what = match ask {
        Ask::Symbol(s) => format!("service {s}"),
        Ask::File(f) => format!("file {f}"),
    };
    match s.code() {
        tonic::Code::Unimplemented => Failure::Scenario(
            "the server does not serve reflection (grpc.reflection.v1 or v1alpha): give the method's .proto files in `protos`".into(),
        ),
        tonic::Code::NotFound => Failure::Scenario(format!("the server's reflection does not know the {what}")),
        code => Failure::Target(transport.explain(
            &format!(
                "asking the server's reflection for the {what}: {} ({})",
                s.message(),
                crate::domain::code_name(code as i32)
            ),
            Some(code),
        )),
    }
}
