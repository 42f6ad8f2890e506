//! Any RPC: the descriptors of a method, from `.proto` files compiled at run
//! time with protox (no `protoc`), and the request bodies, JSON mapped to the
//! method's input message through its descriptor.
//!
//! [`resolve`] runs once, right after a scenario is loaded: it makes the rpc
//! workloads' paths absolute, compiles their protos, finds their methods and
//! encodes their bodies, so every mistake is an error that names the file,
//! the line and the key before anything starts. The driver then calls
//! [`Method::load`] again for each phase (compiling a few protos takes
//! milliseconds) and sends the bodies with the byte [`codec`].

pub(crate) mod body;
pub(crate) mod codec;
pub(crate) mod reflect;

use crate::scenario::{Body, KeyPath, Rpc, Scenario, ScenarioError};
use prost_reflect::{DescriptorPool, MethodDescriptor};
use std::path::{Path, PathBuf};

use body::Bodies;

/// A method ready to call: its path on the wire, its shape, and the bodies to send.
#[derive(Debug, Clone)]
pub struct Method {
    /// `/package.Service/Method`.
    pub path: String,
    pub server_streaming: bool,
    /// Client-streaming or bidirectional: each call sends every body, in order, as one stream.
    pub client_streaming: bool,
    pub bodies: Bodies,
}

/// A problem with an rpc workload, at one of its keys.
#[derive(Debug)]
pub struct KeyError {
    pub key: &'static str,
    pub message: String,
}

fn at(key: &'static str, message: impl Into<String>) -> KeyError {
    KeyError {
        key,
        message: message.into(),
    }
}

impl Method {
    /// Compiles the workload's protos, finds its method and encodes its body.
    /// Paths are taken as they are: [`resolve`] has made them absolute.
    pub fn load(w: &Rpc) -> Result<Method, KeyError> {
        Method::from_pool(&compile(&w.protos, &w.import_paths)?, w)
    }

    /// Finds the workload's method in `pool` and encodes its body.
    pub fn from_pool(pool: &DescriptorPool, w: &Rpc) -> Result<Method, KeyError> {
        let name = w.method.as_str();
        let method = find_method(pool, name).map_err(|m| at("method", m))?;
        if !method.is_client_streaming() {
            for (key, set) in [
                ("send_interval", w.send_interval.is_some()),
                ("hangup", w.hangup.is_some()),
            ] {
                if set {
                    return Err(at(
                        key,
                        format!("applies to client-streaming and bidirectional methods; {name} sends one request"),
                    ));
                }
            }
        }
        let (json, key) = match &w.body {
            Some(Body::Data(d)) => (d.clone(), "data"),
            Some(Body::File(f)) => (
                read_bounded(f).map_err(|e| at("data_file", format!("{}: {e}", f.display())))?,
                "data_file",
            ),
            None => ("{}".into(), "data"),
        };
        let bodies = Bodies::parse(&method.input(), &json).map_err(|m| at(key, m))?;
        Ok(Method {
            path: format!("/{}/{}", method.parent_service().full_name(), method.name()),
            server_streaming: method.is_server_streaming(),
            client_streaming: method.is_client_streaming(),
            bodies,
        })
    }
}

/// The largest `data_file` read.
pub const MAX_DATA_FILE: u64 = 16 << 20;

/// Reads a UTF-8 file of at most [`MAX_DATA_FILE`] bytes.
fn read_bounded(f: &Path) -> std::io::Result<String> {
    String::from_utf8(crate::scenario::read_bounded(f, MAX_DATA_FILE)?).map_err(std::io::Error::other)
}

/// Compiles `protos`, looking imports up in `import_paths` or, with none, in each proto's own directory.
fn compile(protos: &[PathBuf], import_paths: &[PathBuf]) -> Result<DescriptorPool, KeyError> {
    let includes: Vec<PathBuf> = if import_paths.is_empty() {
        protos
            .iter()
            .filter_map(|p| p.parent().map(Path::to_path_buf))
            .collect()
    } else {
        import_paths.to_vec()
    };
    let mut compiler = protox::Compiler::new(&includes).map_err(|e| at("import_paths", e.to_string()))?;
    compiler.include_imports(true);
    for p in protos {
        compiler
            .open_file(p)
            .map_err(|e| at("protos", format!("{}: {e}", p.display())))?;
    }
    Ok(compiler.descriptor_pool())
}

/// Finds `package.Service/Method` (a leading `/` and a `.` before the method are accepted too).
pub fn find_method(pool: &DescriptorPool, name: &str) -> Result<MethodDescriptor, String> {
    let trimmed = name.trim_start_matches('/');
    let (service, method) = trimmed
        .rsplit_once('/')
        .or_else(|| trimmed.rsplit_once('.'))
        .ok_or_else(|| format!("{name:?} is not package.Service/Method"))?;
    let Some(svc) = pool.get_service_by_name(service) else {
        let known: Vec<String> = pool.services().map(|s| s.full_name().to_string()).collect();
        return Err(format!(
            "no service {service} in the protos (they define: {})",
            list(&known)
        ));
    };
    let found = svc.methods().find(|m| m.name() == method);
    found.ok_or_else(|| {
        let known: Vec<String> = svc.methods().map(|m| m.name().to_string()).collect();
        format!("{service} has no method {method} (it has: {})", list(&known))
    })
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// Loads a scenario file and resolves its rpc workloads: what `run` and `validate` read.
pub fn load_scenario(file: &Path) -> Result<Scenario, ScenarioError> {
    let mut sc = crate::scenario::read_file(file)?;
    resolve(&mut sc, file)?;
    Ok(sc)
}

/// The key path `phases[p].workloads[i].k`.
fn workload_key(p: usize, i: usize, k: &str) -> KeyPath {
    KeyPath::default()
        .key("phases")
        .index(p)
        .key("workloads")
        .index(i)
        .key(k)
}

/// Every rpc workload's method, by phase and workload index.
#[derive(Debug, Default)]
pub struct Methods(Vec<Vec<Option<std::sync::Arc<Method>>>>);

impl Methods {
    /// The method of workload `workload` of phase `phase`, if it is an rpc workload.
    pub fn get(&self, phase: usize, workload: usize) -> Option<std::sync::Arc<Method>> {
        self.0.get(phase)?.get(workload)?.clone()
    }

    /// The first rpc workload's method, in phase order.
    pub fn first(&self) -> Option<std::sync::Arc<Method>> {
        self.0.iter().flatten().flatten().next().cloned()
    }
}

/// How long reflection may take, connecting included.
pub const REFLECTION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Why the rpc methods could not be loaded.
#[derive(Debug)]
pub enum MethodsError {
    /// The scenario's mistake: a method, a body, or a target without reflection for
    /// a workload that gives no protos. Names the file, the line and the key.
    Scenario(ScenarioError),
    /// The target's or the connection's: reflection could not be asked or answered
    /// (a refused connection, a missing client certificate, wrong credentials).
    Target(String),
}

/// Loads every rpc workload's method once, before the load starts: from its
/// protos, or, for the workloads without any, through the reflection of the
/// target at `dial`.
pub async fn load_methods(sc: &Scenario, file: &Path, dial: &crate::transport::Dial) -> Result<Methods, MethodsError> {
    let scenario_error = |key: &KeyPath, m: String| MethodsError::Scenario(crate::scenario::error_at(file, key, m));
    let key = workload_key;
    let mut services: Vec<String> = sc
        .phases
        .iter()
        .flat_map(|p| p.workloads.iter().filter_map(|w| w.rpc()))
        .filter(|r| r.protos.is_empty())
        .filter_map(|r| Some(r.method.trim_start_matches('/').rsplit_once('/')?.0.to_string()))
        .collect();
    services.sort();
    services.dedup();
    let reflected = if services.is_empty() {
        None
    } else {
        let addr = &dial.addr;
        let fetched = async {
            let channel = dial.connect(REFLECTION_TIMEOUT).await.map_err(|e| {
                reflect::Failure::Target(
                    dial.transport
                        .explain(&format!("connecting to {addr} for reflection: {e}"), None),
                )
            })?;
            reflect::fetch(channel, &services, &dial.transport).await
        };
        let first = sc.phases.iter().enumerate().find_map(|(p, ph)| {
            ph.workloads
                .iter()
                .position(|w| w.rpc().is_some_and(|r| r.protos.is_empty()))
                .map(|i| (p, i))
        });
        let (p, i) = first.unwrap_or_default();
        let pool = match tokio::time::timeout(REFLECTION_TIMEOUT, fetched).await {
            Ok(Ok(pool)) => pool,
            Ok(Err(reflect::Failure::Scenario(m))) => return Err(scenario_error(&key(p, i, "method"), m)),
            Ok(Err(reflect::Failure::Target(m))) => return Err(MethodsError::Target(m)),
            Err(_) => {
                return Err(MethodsError::Target(format!(
                    "the server reflection of {addr} did not answer in {REFLECTION_TIMEOUT:?}"
                )))
            }
        };
        Some(pool)
    };
    let mut out = Vec::new();
    for (p, phase) in sc.phases.iter().enumerate() {
        let mut row = Vec::new();
        for (i, w) in phase.workloads.iter().enumerate() {
            let method = match (w.rpc(), &reflected) {
                (Some(r), Some(pool)) if r.protos.is_empty() => Some(Method::from_pool(pool, r)),
                (Some(r), _) => Some(Method::load(r)),
                (None, _) => None,
            };
            row.push(match method {
                Some(Ok(m)) => Some(std::sync::Arc::new(m)),
                Some(Err(e)) => return Err(scenario_error(&key(p, i, e.key), e.message)),
                None => None,
            });
        }
        out.push(row);
    }
    Ok(Methods(out))
}

/// Makes every rpc workload's paths absolute (relative ones are taken from the
/// scenario file's directory, then from the current directory) and checks that
/// its method and body load. Errors name the scenario file, the line and the key.
pub fn resolve(sc: &mut Scenario, file: &Path) -> Result<(), ScenarioError> {
    for (p, phase) in sc.phases.iter_mut().enumerate() {
        for (i, w) in phase.workloads.iter_mut().enumerate() {
            let crate::scenario::Load::Rpc(w) = &mut w.load else {
                continue;
            };
            let key = |k: &str| workload_key(p, i, k);
            for (name, paths) in [("protos", &mut w.protos), ("import_paths", &mut w.import_paths)] {
                for (j, path) in paths.iter_mut().enumerate() {
                    *path = crate::scenario::locate_file(file, path).ok_or_else(|| {
                        crate::scenario::error_at(
                            file,
                            &key(name).index(j),
                            format!("{}: no such file or directory", path.display()),
                        )
                    })?;
                }
            }
            if let Some(Body::File(f)) = &mut w.body {
                *f = crate::scenario::locate_file(file, f).ok_or_else(|| {
                    crate::scenario::error_at(file, &key("data_file"), format!("{}: no such file", f.display()))
                })?;
            }
            // Without protos the method comes from the target's reflection, checked when the run starts.
            if !w.protos.is_empty() {
                Method::load(w).map_err(|e| crate::scenario::error_at(file, &key(e.key), e.message))?;
            }
        }
    }
    Ok(())
}
