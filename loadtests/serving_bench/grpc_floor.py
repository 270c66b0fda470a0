"""The floor of a Python gRPC server: ``grpc.aio`` answering ModelInfer with no model behind it.

    .venv/bin/python loadtests/serving_bench/grpc_floor.py --port PORT --response FILE

It answers every ``ModelInfer`` call with the bytes of ``FILE`` (a response the real
server gave for the benchmark's request, so the message sizes are the real ones),
after one pass of the event loop, as a request that waits for the batcher does. It
runs on uvloop, as ``quayside serve`` does. Whatever a server built on ``grpc.aio``
adds (parsing, the model, metrics) comes on top of what this costs, so its
requests/s bound what any such server can answer on the machine with that client.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import grpc
import uvloop

SERVICE = "inference.GRPCInferenceService"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--response", type=Path, required=True, help="the serialised ModelInferResponse")
    return parser.parse_args()


async def serve(port: int, response: bytes) -> None:
    async def model_infer(_request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
        await asyncio.sleep(0)
        return response

    server = grpc.aio.server()
    handlers = {"ModelInfer": grpc.unary_unary_rpc_method_handler(model_infer)}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def main() -> None:
    args = parse_args()
    uvloop.run(serve(args.port, args.response.read_bytes()))


if __name__ == "__main__":
    main()
