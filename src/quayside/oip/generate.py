"""``python -m quayside.oip.generate [DIR]``: the Python modules of ``grpc_predict_v2.proto``.

Writes ``grpc_predict_v2_pb2.py`` and ``grpc_predict_v2_pb2_grpc.py`` into DIR (by
default this package, where they are committed) with grpcio-tools' ``protoc``. The
proto is compiled under its package path, so the service module imports the message
module as ``quayside.oip.grpc_predict_v2_pb2``. The output depends on the
grpcio-tools version (its protoc stamps the protobuf version it targets): the dev extra
pins it, and a test regenerates into a temporary directory and compares.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from quayside.errors import MissingExtraError, QuaysideError

PACKAGE_DIR = Path(__file__).resolve().parent
PROTO = "grpc_predict_v2.proto"
GENERATED = ("grpc_predict_v2_pb2.py", "grpc_predict_v2_pb2_grpc.py")
_IMPORT_ROOT = PACKAGE_DIR.parents[1]  # the directory holding the quayside package
_PROTO_PATH = PACKAGE_DIR.relative_to(_IMPORT_ROOT) / PROTO


def generate(out_dir: str | Path = PACKAGE_DIR) -> list[Path]:
    """Compile the proto and write the two generated modules into ``out_dir``; returns their paths."""
    try:
        from grpc_tools import protoc
    except ImportError as e:
        raise MissingExtraError("dev", "regenerating the gRPC modules (grpcio-tools)", cause=e) from e
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="quayside-protoc-") as scratch:
        status = protoc.main(
            [
                "grpc_tools.protoc",
                f"--proto_path={_IMPORT_ROOT}",
                f"--python_out={scratch}",
                f"--grpc_python_out={scratch}",
                _PROTO_PATH.as_posix(),
            ]
        )
        if status != 0:
            raise QuaysideError(
                f"protoc could not compile {PROTO} (exit status {status}; its errors are above)"
            )
        compiled = Path(scratch) / _PROTO_PATH.parent
        written = [out / name for name in GENERATED]
        for path in written:
            shutil.copyfile(compiled / path.name, path)
    return written


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1:
        raise SystemExit("usage: python -m quayside.oip.generate [DIR]")
    try:
        for path in generate(*args):
            print(f"wrote {path}")
    except QuaysideError as e:
        raise SystemExit(f"error: {e.message}") from None


if __name__ == "__main__":
    main()
