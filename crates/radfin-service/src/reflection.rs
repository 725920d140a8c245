//! gRPC server reflection (`grpc.reflection.v1` and `v1alpha`), as the protocol has it, so that
//! strict clients (a descriptor pool fed only from the reflection stream, `grpcurl`, Python
//! `grpcio-reflection`) can use it:
//!
//! - a port lists only the services it serves, and health and reflection;
//! - a file request (by name, by symbol, by extension) is answered with the file and all its
//!   transitive dependencies, the requested file first, each once, as gRPC's own servers do;
//! - a request that finds nothing is answered with an `error_response` (NOT_FOUND) on the open
//!   stream, which goes on serving the next requests.
//!
//! Only the files the port's services need are served: those declaring them and their
//! dependencies. Each file is served as the original bytes of its descriptor, so nothing the
//! compiler wrote (comments, options) is lost on the way.
//!
//! `tonic-reflection` answers a file request with that file alone (its dependencies never
//! arrive) and ends the stream on the first unknown symbol; its generated messages and servers
//! are used here, its state and answers are not.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use anyhow::{Context, anyhow};
use futures::StreamExt;
use futures::stream::BoxStream;
use prost::Message;
use prost_types::{DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorProto};
use tonic::{Code, Request, Response, Status, Streaming};
use tonic_reflection::pb::{v1, v1alpha};
use v1::server_reflection_request::MessageRequest;
use v1::server_reflection_response::MessageResponse;

/// The health service every port serves.
const HEALTH: &str = "grpc.health.v1.Health";
/// The reflection services every port serves.
const REFLECTION: [&str; 2] = ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"];

/// The encoded descriptor sets the files come from: radfin's, health's, reflection's.
fn descriptor_sets() -> [&'static [u8]; 4] {
    [
        radfin_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        v1::FILE_DESCRIPTOR_SET,
        v1alpha::FILE_DESCRIPTOR_SET,
    ]
}

/// What one port's reflection answers from.
#[derive(Debug, Default)]
struct Index {
    /// Listed by `list_services`: the port's services, health, reflection.
    services: Vec<String>,
    /// The files served, by name: the original bytes and the names of the files they import.
    files: HashMap<String, File>,
    /// Every fully qualified symbol of the files served (no leading dot), to its file.
    symbols: HashMap<String, String>,
    /// The message types of the files served (fully qualified).
    messages: HashSet<String>,
    /// (extended message, field number) of every extension served, to its file.
    extensions: HashMap<(String, i32), String>,
}

#[derive(Debug)]
struct File {
    raw: Vec<u8>,
    dependencies: Vec<String>,
}

/// A `FileDescriptorSet` read as the bytes of each file, which are served as they are.
#[derive(Clone, PartialEq, prost::Message)]
struct RawFileDescriptorSet {
    #[prost(bytes = "vec", repeated, tag = "1")]
    file: Vec<Vec<u8>>,
}

impl Index {
    /// The index of a port serving `served` (fully qualified service names), from `sets`
    /// (encoded `FileDescriptorSet`s; a file in more than one is taken from the first). A
    /// served service no set declares is logged and not listed.
    fn new(sets: &[&[u8]], served: &[&str]) -> anyhow::Result<Index> {
        let mut all: HashMap<String, (Vec<u8>, FileDescriptorProto)> = HashMap::new();
        let mut service_files: HashMap<String, String> = HashMap::new();
        for set in sets {
            let set = RawFileDescriptorSet::decode(*set).context("a file descriptor set")?;
            for raw in set.file {
                let file = FileDescriptorProto::decode(raw.as_slice()).context("a file descriptor")?;
                let name = file.name().to_owned();
                if all.contains_key(&name) {
                    continue;
                }
                for service in &file.service {
                    service_files.insert(qualified(file.package(), service.name()), name.clone());
                }
                all.insert(name, (raw, file));
            }
        }

        let mut index = Index::default();
        let mut roots = Vec::new();
        for service in served.iter().copied().chain([HEALTH]).chain(REFLECTION) {
            match service_files.get(service) {
                Some(file) => {
                    if !index.services.iter().any(|s| s == service) {
                        index.services.push(service.to_owned());
                    }
                    roots.push(file.clone());
                }
                None => tracing::warn!(service, "no descriptor for a served service: reflection does not list it"),
            }
        }

        // The files the services are declared in and everything they import.
        let mut pending = roots;
        while let Some(name) = pending.pop() {
            if index.files.contains_key(&name) {
                continue;
            }
            let (raw, file) =
                all.remove(&name).ok_or_else(|| anyhow!("{name} is imported but in no descriptor set"))?;
            pending.extend(file.dependency.iter().cloned());
            index.add_symbols(&file);
            index.files.insert(name, File { raw, dependencies: file.dependency });
        }
        Ok(index)
    }

    fn add_symbols(&mut self, file: &FileDescriptorProto) {
        let name = file.name();
        let package = file.package();
        for message in &file.message_type {
            self.add_message(name, package, message);
        }
        for e in &file.enum_type {
            self.add_enum(name, package, e);
        }
        for extension in &file.extension {
            self.add_extension(name, package, extension);
        }
        for service in &file.service {
            let service_name = qualified(package, service.name());
            for method in &service.method {
                self.symbols.insert(qualified(&service_name, method.name()), name.to_owned());
            }
            self.symbols.insert(service_name, name.to_owned());
        }
    }

    fn add_message(&mut self, file: &str, scope: &str, message: &DescriptorProto) {
        let name = qualified(scope, message.name());
        for field in &message.field {
            self.symbols.insert(qualified(&name, field.name()), file.to_owned());
        }
        for oneof in &message.oneof_decl {
            self.symbols.insert(qualified(&name, oneof.name()), file.to_owned());
        }
        for nested in &message.nested_type {
            self.add_message(file, &name, nested);
        }
        for e in &message.enum_type {
            self.add_enum(file, &name, e);
        }
        for extension in &message.extension {
            self.add_extension(file, &name, extension);
        }
        self.messages.insert(name.clone());
        self.symbols.insert(name, file.to_owned());
    }

    /// An enum and its values, which protobuf scopes beside the enum, not in it.
    fn add_enum(&mut self, file: &str, scope: &str, e: &EnumDescriptorProto) {
        for value in &e.value {
            self.symbols.insert(qualified(scope, value.name()), file.to_owned());
        }
        self.symbols.insert(qualified(scope, e.name()), file.to_owned());
    }

    fn add_extension(&mut self, file: &str, scope: &str, extension: &FieldDescriptorProto) {
        self.symbols.insert(qualified(scope, extension.name()), file.to_owned());
        let extendee = extension.extendee().trim_start_matches('.').to_owned();
        self.extensions.insert((extendee, extension.number()), file.to_owned());
    }

    /// File `name` and its transitive dependencies, each once, `name` first.
    fn with_dependencies(&self, name: &str) -> Option<Vec<Vec<u8>>> {
        self.files.get(name)?;
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut pending = vec![name];
        while let Some(name) = pending.pop() {
            let Some(file) = self.files.get(name) else { continue };
            if !seen.insert(name) {
                continue;
            }
            out.push(file.raw.clone());
            // Reversed, so that they are visited in the order they are imported.
            pending.extend(file.dependencies.iter().rev().map(String::as_str));
        }
        Some(out)
    }

    fn answer(&self, request: v1::ServerReflectionRequest) -> v1::ServerReflectionResponse {
        let files =
            |name: Option<&String>, what: &dyn Fn() -> String| match name.and_then(|n| self.with_dependencies(n)) {
                Some(file_descriptor_proto) => {
                    MessageResponse::FileDescriptorResponse(v1::FileDescriptorResponse { file_descriptor_proto })
                }
                None => error(Code::NotFound, format!("{} not found", what())),
            };
        let response = match &request.message_request {
            None => error(Code::InvalidArgument, "a request names what it asks for".to_owned()),
            Some(MessageRequest::FileByFilename(name)) => files(Some(name), &|| format!("file {name:?}")),
            Some(MessageRequest::FileContainingSymbol(symbol)) => {
                files(self.symbols.get(symbol.trim_start_matches('.')), &|| format!("symbol {symbol:?}"))
            }
            Some(MessageRequest::FileContainingExtension(e)) => {
                let key = (e.containing_type.trim_start_matches('.').to_owned(), e.extension_number);
                files(self.extensions.get(&key), &|| {
                    format!("extension {} of {:?}", e.extension_number, e.containing_type)
                })
            }
            Some(MessageRequest::AllExtensionNumbersOfType(name)) => {
                let name = name.trim_start_matches('.');
                if self.messages.contains(name) {
                    let mut extension_number: Vec<i32> =
                        self.extensions.keys().filter(|(t, _)| t == name).map(|(_, n)| *n).collect();
                    extension_number.sort_unstable();
                    MessageResponse::AllExtensionNumbersResponse(v1::ExtensionNumberResponse {
                        base_type_name: name.to_owned(),
                        extension_number,
                    })
                } else {
                    error(Code::NotFound, format!("message type {name:?} not found"))
                }
            }
            Some(MessageRequest::ListServices(_)) => MessageResponse::ListServicesResponse(v1::ListServiceResponse {
                service: self.services.iter().map(|name| v1::ServiceResponse { name: name.clone() }).collect(),
            }),
        };
        v1::ServerReflectionResponse {
            valid_host: request.host.clone(),
            original_request: Some(request),
            message_response: Some(response),
        }
    }
}

fn qualified(scope: &str, name: &str) -> String {
    if scope.is_empty() { name.to_owned() } else { format!("{scope}.{name}") }
}

fn error(code: Code, error_message: String) -> MessageResponse {
    MessageResponse::ErrorResponse(v1::ErrorResponse { error_code: code as i32, error_message })
}

/// One port's reflection, v1 and v1alpha answering alike.
#[derive(Clone, Debug)]
pub(crate) struct Reflection(Arc<Index>);

impl Reflection {
    /// Reflection of a port serving `served` (fully qualified service names) besides health
    /// and reflection.
    pub(crate) fn new(served: &[&str]) -> anyhow::Result<Reflection> {
        Ok(Reflection(Arc::new(Index::new(&descriptor_sets(), served)?)))
    }

    pub(crate) fn v1(&self) -> v1::server_reflection_server::ServerReflectionServer<Reflection> {
        v1::server_reflection_server::ServerReflectionServer::new(self.clone())
    }

    pub(crate) fn v1alpha(&self) -> v1alpha::server_reflection_server::ServerReflectionServer<Reflection> {
        v1alpha::server_reflection_server::ServerReflectionServer::new(self.clone())
    }
}

#[tonic::async_trait]
impl v1::server_reflection_server::ServerReflection for Reflection {
    type ServerReflectionInfoStream = BoxStream<'static, Result<v1::ServerReflectionResponse, Status>>;

    async fn server_reflection_info(
        &self,
        request: Request<Streaming<v1::ServerReflectionRequest>>,
    ) -> Result<Response<Self::ServerReflectionInfoStream>, Status> {
        let index = Arc::clone(&self.0);
        Ok(Response::new(request.into_inner().map(move |r| r.map(|r| index.answer(r))).boxed()))
    }
}

/// v1alpha's messages are v1's under another package name: the same fields, the same numbers.
#[tonic::async_trait]
impl v1alpha::server_reflection_server::ServerReflection for Reflection {
    type ServerReflectionInfoStream = BoxStream<'static, Result<v1alpha::ServerReflectionResponse, Status>>;

    async fn server_reflection_info(
        &self,
        request: Request<Streaming<v1alpha::ServerReflectionRequest>>,
    ) -> Result<Response<Self::ServerReflectionInfoStream>, Status> {
        let index = Arc::clone(&self.0);
        Ok(Response::new(
            request
                .into_inner()
                .map(move |r| {
                    let request: v1::ServerReflectionRequest = recode(&r?)?;
                    recode(&index.answer(request))
                })
                .boxed(),
        ))
    }
}

/// `message` as the message of the same wire format.
fn recode<A: Message, B: Message + Default>(message: &A) -> Result<B, Status> {
    B::decode(message.encode_to_vec().as_slice()).map_err(|e| Status::internal(format!("reflection: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(served: &[&str]) -> Index {
        Index::new(&descriptor_sets(), served).expect("index")
    }

    fn ask(index: &Index, request: MessageRequest) -> MessageResponse {
        let request = v1::ServerReflectionRequest { host: String::new(), message_request: Some(request) };
        index.answer(request).message_response.expect("a response")
    }

    /// The names of the files of a file descriptor response, in order.
    fn file_names(response: MessageResponse) -> Vec<String> {
        let MessageResponse::FileDescriptorResponse(files) = response else { panic!("{response:?}") };
        files
            .file_descriptor_proto
            .iter()
            .map(|raw| FileDescriptorProto::decode(raw.as_slice()).expect("a file").name().to_owned())
            .collect()
    }

    #[test]
    fn a_port_lists_its_services_health_and_reflection_only() {
        let index = index(&["radfin.ingest.v1.IngestService"]);
        let MessageResponse::ListServicesResponse(list) = ask(&index, MessageRequest::ListServices(String::new()))
        else {
            panic!()
        };
        let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "radfin.ingest.v1.IngestService",
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection"
            ]
        );
    }

    #[test]
    fn a_symbol_comes_with_the_transitive_dependencies_of_its_file() {
        let index = index(&["radfin.ingest.v1.IngestService"]);
        let files =
            file_names(ask(&index, MessageRequest::FileContainingSymbol("radfin.ingest.v1.IngestService".into())));
        assert_eq!(
            files,
            ["radfin/ingest/v1/ingest.proto", "radfin/ingest/v1/report.proto", "radfin/common/v1/enums.proto"]
        );
        // A method, a message, an enum, an enum value (scoped beside its enum, as protobuf has it).
        for (symbol, file) in [
            ("radfin.ingest.v1.IngestService.SubmitReport", "radfin/ingest/v1/ingest.proto"),
            (".radfin.ingest.v1.SubmitReportRequest", "radfin/ingest/v1/ingest.proto"),
            ("radfin.common.v1.Modality", "radfin/common/v1/enums.proto"),
            ("radfin.common.v1.MODALITY_MRI", "radfin/common/v1/enums.proto"),
        ] {
            assert_eq!(
                file_names(ask(&index, MessageRequest::FileContainingSymbol(symbol.into())))[0],
                file,
                "{symbol}"
            );
        }
        let files = file_names(ask(&index, MessageRequest::FileByFilename("radfin/ingest/v1/report.proto".into())));
        assert_eq!(files, ["radfin/ingest/v1/report.proto", "radfin/common/v1/enums.proto"]);
    }

    #[test]
    fn another_ports_service_and_unknown_names_are_not_found_and_the_stream_goes_on() {
        let index = index(&["radfin.ingest.v1.IngestService"]);
        for request in [
            MessageRequest::FileContainingSymbol("radfin.pricing.v1.PricingService".into()),
            MessageRequest::FileContainingSymbol("no.such.Symbol".into()),
            MessageRequest::FileByFilename("radfin/pricing/v1/pricing.proto".into()),
            MessageRequest::AllExtensionNumbersOfType("no.such.Message".into()),
        ] {
            let MessageResponse::ErrorResponse(e) = ask(&index, request.clone()) else { panic!("{request:?}") };
            assert_eq!(e.error_code, Code::NotFound as i32, "{request:?}");
        }
    }

    #[test]
    fn a_served_service_without_a_descriptor_is_not_listed() {
        let index = index(&["radfin.test.v1.TestService"]);
        assert_eq!(index.services.len(), 3);
        assert!(index.files.keys().all(|f| !f.starts_with("radfin/")), "{:?}", index.files.keys());
    }
}
