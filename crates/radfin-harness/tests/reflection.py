"""List a gRPC server's services through reflection and call one method with an empty request,
using only the descriptors the server returns (no .proto files): python reflection.py ADDR SERVICE [METHOD]"""
import sys

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

addr, service = sys.argv[1], sys.argv[2]
method = sys.argv[3] if len(sys.argv) > 3 else ""
channel = grpc.insecure_channel(addr)
stub = reflection_pb2_grpc.ServerReflectionStub(channel)
responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
names = [s.name for r in responses for s in r.list_services_response.service]
print("services:", ", ".join(sorted(names)))
if service not in names:
    sys.exit(f"{service} is not listed")

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
