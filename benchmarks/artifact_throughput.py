"""Artifact throughput through ``quayside server`` against boto3 straight to the same S3 endpoint.

    python benchmarks/artifact_throughput.py                 # 512 MiB, 3 rounds, on a moto server
    python benchmarks/artifact_throughput.py --size-mb 64 --rounds 1

Both sides move the same bytes between this process and the same moto S3 server: the server
path streams an upload through ``PUT /api/tracking/runs/<id>/artifacts/file`` (the server
hands it to its S3 store, multipart above 8 MiB) and a download back through ``GET``; the
direct path is boto3's own ``upload_fileobj`` / ``download_fileobj`` (s3transfer, threads and
all). Each figure is the best of the rounds. Target (issue 17): the server reaches at least
0.7 of boto3's throughput, both ways.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from artifact_common import MIB, body, moto_endpoint, new_run, quayside_server, s3_client

TARGET_RATIO = 0.7


class Sink(io.RawIOBase):
    """Counts what is written to it and keeps nothing."""

    def __init__(self) -> None:
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        self.count += len(data)
        return len(data)


class Source(io.RawIOBase):
    """``size`` bytes, the same block repeated, as a readable stream."""

    def __init__(self, size: int, block: bytes) -> None:
        self._chunks = body(size, block)
        self._rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if not self._rest:
            self._rest = next(self._chunks, b"")
        n = min(len(buffer), len(self._rest))
        buffer[:n] = self._rest[:n]
        self._rest = self._rest[n:]
        return n


def best(rounds: int, action) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=512, help="artifact size in MiB (default 512)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each measurement (default 3)")
    args = parser.parse_args()
    size = args.size_mb * MIB
    block = os.urandom(MIB)

    with moto_endpoint() as endpoint:
        s3 = s3_client(endpoint)
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)

        def direct_up() -> None:
            s3.upload_fileobj(Source(size, block), bucket, "direct/big.bin")

        def direct_down() -> None:
            sink = Sink()
            s3.download_fileobj(bucket, "direct/big.bin", sink)
            assert sink.count == size

        boto_up = best(args.rounds, direct_up)
        boto_down = best(args.rounds, direct_down)

        root = f"s3://{bucket}/server"
        with (
            quayside_server(root, endpoint=endpoint, max_bytes=size + MIB) as server,
            httpx.Client(base_url=server.url, timeout=600) as http,
        ):
            run_id = new_run(http)
            url = f"/api/tracking/runs/{run_id}/artifacts/file"

            def server_up() -> None:
                answer = http.put(
                    url,
                    params={"path": "big.bin"},
                    content=body(size, block),
                    headers={"content-length": str(size)},
                )
                answer.raise_for_status()

            def server_down() -> None:
                received = 0
                with http.stream("GET", url, params={"path": "big.bin"}) as r:
                    r.raise_for_status()
                    for chunk in r.iter_bytes(MIB):
                        received += len(chunk)
                assert received == size

            via_up = best(args.rounds, server_up)
            via_down = best(args.rounds, server_down)

    mb = args.size_mb
    print(f"artifact size {mb} MiB, best of {args.rounds}")
    print(f"{'':12}{'boto3 direct':>16}{'via server':>16}{'ratio':>8}")
    for label, direct, via in (("upload", boto_up, via_up), ("download", boto_down, via_down)):
        ratio = direct / via
        verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
        print(
            f"{label:12}{mb / direct:11.1f} MiB/s{mb / via:11.1f} MiB/s{ratio:8.2f}  (target >= {TARGET_RATIO}: {verdict})"
        )


if __name__ == "__main__":
    main()
