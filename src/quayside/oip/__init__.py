"""The Open Inference Protocol's gRPC definition, shared by the server and the load generator.

``grpc_predict_v2.proto`` is KServe's ``inference.GRPCInferenceService`` (with Triton's
model repository extension); ``grpc_predict_v2_pb2*.py`` are generated from it by
:mod:`.generate` and committed. ``quayside.serving.grpc`` answers the service and
``quayside.loadtesting`` calls it; this package sits below both and imports nothing of
Quayside but ``errors`` (in :mod:`.generate`). Importing the package loads neither
protobuf nor grpc; the generated modules do.

The messages live in protobuf's default pool as ``inference.*``, as tritonclient's
``service_pb2`` does too: one process may import one of the two, never both.
"""
