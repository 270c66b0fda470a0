"""How much a ``quayside server``'s memory grows while a large artifact goes up and comes back down.

    python benchmarks/artifact_server_rss.py                     # 1 GiB, S3 root on a moto server
    python benchmarks/artifact_server_rss.py --root local        # 1 GiB, a local artifact directory
    python benchmarks/artifact_server_rss.py --size-mb 128       # smaller, for a quick look

The server is a real ``quayside server`` process (SQLite in a temporary home). The artifact is
uploaded through ``PUT /api/tracking/runs/<id>/artifacts/file`` as a stream and downloaded back
as a stream, its sha256 compared; the figure is the server's peak resident set (``VmHWM``)
over its resident set just before the upload. Target (issue 17): under 100 MB for 1 GiB.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from artifact_common import MIB, body, moto_endpoint, new_run, quayside_server, rss_kib, s3_client

TARGET_MB = 100


class Sampler(threading.Thread):
    """The highest ``VmRSS`` of a process, sampled every 20 ms while running."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.highest = rss_kib(pid)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.02):
            self.highest = max(self.highest, rss_kib(self.pid))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=1024, help="artifact size in MiB (default 1024)")
    parser.add_argument("--root", choices=["s3", "local"], default="s3", help="artifact root (default s3)")
    args = parser.parse_args()
    size = args.size_mb * MIB
    block = os.urandom(MIB)
    expected = hashlib.sha256()
    for piece in body(size, block):
        expected.update(piece)

    with ExitStack() as stack:
        root = endpoint = None
        if args.root == "s3":
            endpoint = stack.enter_context(moto_endpoint())
            bucket = f"bench-{uuid.uuid4().hex[:8]}"
            s3_client(endpoint).create_bucket(Bucket=bucket)
            root = f"s3://{bucket}/artifacts"
        server = stack.enter_context(quayside_server(root, endpoint=endpoint, max_bytes=size + MIB))
        http = stack.enter_context(httpx.Client(base_url=server.url, timeout=600))
        run_id = new_run(http)
        # A small round trip first, so that what the first request loads is in the baseline.
        http.put(f"/api/tracking/runs/{run_id}/artifacts/file", params={"path": "warm"}, content=b"x" * MIB)
        http.get(f"/api/tracking/runs/{run_id}/artifacts/file", params={"path": "warm"})
        baseline = rss_kib(server.pid)
        before_peak = rss_kib(server.pid, "VmHWM")
        sampler = Sampler(server.pid)
        sampler.start()

        start = time.perf_counter()
        answer = http.put(
            f"/api/tracking/runs/{run_id}/artifacts/file",
            params={"path": "big.bin"},
            content=body(size, block),
            headers={"content-length": str(size)},
        )
        answer.raise_for_status()
        uploaded = time.perf_counter() - start
        after_upload = rss_kib(server.pid, "VmHWM")

        got = hashlib.sha256()
        received = 0
        start = time.perf_counter()
        with http.stream(
            "GET", f"/api/tracking/runs/{run_id}/artifacts/file", params={"path": "big.bin"}
        ) as r:
            r.raise_for_status()
            for chunk in r.iter_bytes(MIB):
                got.update(chunk)
                received += len(chunk)
        downloaded = time.perf_counter() - start
        peak = rss_kib(server.pid, "VmHWM")
        sampler.done.set()
        sampler.join()

    if received != size or got.hexdigest() != expected.hexdigest():
        raise SystemExit(f"the download differs from the upload ({received} of {size} bytes)")
    growth_mb = (sampler.highest - baseline) / 1024
    print(f"artifact root        {args.root}")
    print(f"artifact size        {args.size_mb} MiB")
    print(f"upload               {uploaded:7.1f} s  ({args.size_mb / uploaded:7.1f} MiB/s)")
    print(f"download             {downloaded:7.1f} s  ({args.size_mb / downloaded:7.1f} MiB/s)")
    print(f"server RSS baseline  {baseline / 1024:7.1f} MB  (peak before: {before_peak / 1024:.1f} MB)")
    print(
        f"server RSS highest   {sampler.highest / 1024:7.1f} MB  (sampled every 20 ms during the transfers)"
    )
    print(f"server VmHWM         {peak / 1024:7.1f} MB  (after upload: {after_upload / 1024:.1f} MB)")
    print(
        f"RSS growth           {growth_mb:7.1f} MB  (target < {TARGET_MB} MB: {'met' if growth_mb < TARGET_MB else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
