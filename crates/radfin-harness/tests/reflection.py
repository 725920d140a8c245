"""List a gRPC server's services through reflection and call one method with an empty request,
using only the descriptors the server returns (no .proto files), the way strict clients do:
python reflection.py ADDR SERVICE [METHOD]

- list_services, on both reflection versions (v1 and v1alpha), must be exactly SERVICE, health
  and reflection: a port lists only what it serves;
- one file_containing_symbol answer alone must hold everything SERVICE needs (its file and the
  transitive dependencies), so a descriptor pool built from that answer and nothing else finds
  it: the raw reflection stream, as the protocol says;
- an unknown symbol is answered with an error_response, and the same stream answers the next
  request;
- grpcio-reflection's ProtoReflectionDescriptorDatabase finds the service too, and METHOD is
  called with the descriptors it returned."""
import sys

import grpc
from google.protobuf import descriptor_database, descriptor_pb2, descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

addr, service = sys.argv[1], sys.argv[2]
method = sys.argv[3] if len(sys.argv) > 3 else ""
channel = grpc.insecure_channel(addr)
expected = {
    service,
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
}

# v1 has the messages of v1alpha under another package: the same stubs serve both paths.
streams = {
    "v1alpha": reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo,
    "v1": channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    ),
}

for version, stream in streams.items():
    # One stream: an unknown symbol, the services, the service's file.
    requests = [
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="no.such.Service"),
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=service),
    ]
    unknown, listed, files = list(stream(iter(requests), timeout=10))

    if unknown.error_response.error_code != grpc.StatusCode.NOT_FOUND.value[0]:
        sys.exit(f"{version}: an unknown symbol was not answered NOT_FOUND: {unknown}")

    names = {s.name for s in listed.list_services_response.service}
    print(f"services ({version}):", ", ".join(sorted(names)))
    if names != expected:
        sys.exit(f"{version}: listed {sorted(names)}, expected exactly {sorted(expected)}")

    # A pool that knows nothing but the files of this one answer.
    database = descriptor_database.DescriptorDatabase()
    received = []
    for raw in files.file_descriptor_response.file_descriptor_proto:
        proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
        received.append(proto.name)
        database.Add(proto)
    print(f"files ({version}):", ", ".join(received))
    try:
        descriptor = descriptor_pool.DescriptorPool(database).FindServiceByName(service)
    except KeyError as e:
        sys.exit(f"{version}: the answer for {service} does not hold all it needs ({', '.join(received)}): {e}")
    for m in descriptor.methods:
        # Every request and response type resolves from that answer alone.
        m.input_type.fields, m.output_type.fields

pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
descriptor = pool.FindServiceByName(service)
print("methods:", ", ".join(m.name for m in descriptor.methods))
if method:
    m = descriptor.methods_by_name[method]
    request_cls = message_factory.GetMessageClass(m.input_type)
    response_cls = message_factory.GetMessageClass(m.output_type)
    call = channel.unary_unary(
        f"/{service}/{method}",
        request_serializer=request_cls.SerializeToString,
        response_deserializer=response_cls.FromString,
    )
    request = request_cls()
    if method == "SummarizePeriod":
        request.period = "2026-10"
    response = call(request, timeout=10)
    print(json_format.MessageToJson(response, always_print_fields_with_no_presence=True))
