"""The Open Inference Protocol over gRPC (KServe's ``inference.GRPCInferenceService``) beside REST.

A thin adapter over the worker's :class:`~quayside.serving.model_server.ModelServer`:
:mod:`.tensors` turns ``ModelInfer`` messages into arrays and back, :mod:`.status` maps
the Quayside error tree onto gRPC status codes, :mod:`.servicer` answers the service's
methods, and :mod:`.transport` runs a ``grpc.aio`` server on the worker's event loop for
as long as the app's lifespan. The proto and its generated modules are in
:mod:`quayside.oip`, shared with the load generator. Nothing here is imported unless the gRPC
port is on, so ``import quayside.serving`` does not load grpc.
"""
