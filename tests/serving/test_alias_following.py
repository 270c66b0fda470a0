"""A server following ``models:/churn@champion`` on a real ``quayside server`` registry.

Clients over REST and gRPC call the model in a loop while the alias moves from version 1 to 2:
no request fails, and every answer is version 1's or version 2's outputs for its input, whole,
never a mix, under the version the response names. Moving the alias on to a version that cannot
load (a pickled model the server does not trust) leaves version 2 serving, ready, and reported.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton

from tests.serving.conftest import RunningServer, free_port, start_server
from tests.serving.registry_versions import expected

FOLLOW_INTERVAL_S = 0.2


@pytest.fixture(scope="module")
def following(churn_registry, tmp_path_factory) -> Iterator[RunningServer]:
    server, _ = churn_registry
    grpc_port = free_port()
    running = start_server(
        "models:/churn@champion",
        "--follow-interval",
        str(FOLLOW_INTERVAL_S),
        "--grpc-port",
        str(grpc_port),
        "--quiet",
        log_dir=tmp_path_factory.mktemp("log"),
        env={"QUAYSIDE_REGISTRY_URI": server.url, "QUAYSIDE_HOME": str(tmp_path_factory.mktemp("home"))},
    )
    running.grpc_address = f"127.0.0.1:{grpc_port}"  # type: ignore[attr-defined]
    yield running
    running.stop()


def served_version(url: str) -> str:
    document = httpx.get(f"{url}/v2/models/churn", timeout=10).json()
    return document["versions"][0]


def wait_for(condition, timeout: float = 60, about=lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out {about()}"
        time.sleep(0.05)


class Loop(threading.Thread):
    """One client calling the model until told to stop, keeping (version, outputs, row range) of each answer."""

    def __init__(self, call, rows: np.ndarray, seed: int) -> None:
        super().__init__(daemon=True)
        self.call, self.rows, self.random = call, rows, np.random.default_rng(seed)
        self.answers: list[tuple[str, np.ndarray, int, int]] = []
        self.failures: list[str] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            start = int(self.random.integers(0, 100))
            stop = start + int(self.random.integers(1, 50))
            try:
                version, labels = self.call(self.rows[start:stop])
            except Exception as e:
                self.failures.append(f"{type(e).__name__}: {e}")
                continue
            self.answers.append((version, labels, start, stop))


def rest_call(url: str):
    client = httpx.Client(base_url=url, timeout=30)

    def call(batch: np.ndarray) -> tuple[str, np.ndarray]:
        body = {
            "inputs": [
                {
                    "name": "input",
                    "datatype": "FP32",
                    "shape": list(batch.shape),
                    "data": batch.ravel().tolist(),
                }
            ]
        }
        response = client.post("/v2/models/churn/infer", json=body)
        if response.status_code != 200:
            raise AssertionError(f"{response.status_code}: {response.text}")
        document = response.json()
        assert response.headers["quayside-model-version"] == document["model_version"]
        outputs = {output["name"]: output for output in document["outputs"]}
        return document["model_version"], np.asarray(outputs["label"]["data"])

    return call


def invocations_call(url: str):
    client = httpx.Client(base_url=url, timeout=30)

    def call(batch: np.ndarray) -> tuple[str, np.ndarray]:
        response = client.post("/invocations", json={"inputs": batch.tolist()})
        if response.status_code != 200:
            raise AssertionError(f"{response.status_code}: {response.text}")
        predictions = response.json()["predictions"]
        return response.headers["quayside-model-version"], np.asarray(predictions["label"])

    return call


def grpc_call(address: str):
    client = triton.InferenceServerClient(address)

    def call(batch: np.ndarray) -> tuple[str, np.ndarray]:
        tensor = triton.InferInput("input", list(batch.shape), "FP32")
        tensor.set_data_from_numpy(np.ascontiguousarray(batch))
        result = client.infer("churn", [tensor])
        return result.get_response().model_version, result.as_numpy("label")

    return call


def test_a_request_loop_across_an_alias_move_sees_whole_answers_of_one_version_or_the_other(
    following, churn_registry, churn_packages, churn_rows
):
    _, client = churn_registry
    assert served_version(following.url) == "1"
    wanted = {version: expected(churn_packages, version, churn_rows) for version in (1, 2)}
    assert not np.array_equal(wanted[1], wanted[2])  # a mix would show
    loops = [
        Loop(rest_call(following.url), churn_rows, 1),
        Loop(rest_call(following.url), churn_rows, 2),
        Loop(invocations_call(following.url), churn_rows, 3),
        Loop(grpc_call(following.grpc_address), churn_rows, 4),  # type: ignore[attr-defined]
        Loop(grpc_call(following.grpc_address), churn_rows, 5),  # type: ignore[attr-defined]
    ]
    for loop in loops:
        loop.start()
    failures = lambda: [loop.failures[:1] for loop in loops]  # noqa: E731
    wait_for(lambda: all(len(loop.answers) >= 20 for loop in loops), about=failures)
    client.set_alias("churn", "champion", 2)
    wait_for(lambda: served_version(following.url) == "2")
    settled = [len(loop.answers) for loop in loops]
    wait_for(lambda: all(len(loop.answers) >= n + 20 for loop, n in zip(loops, settled, strict=True)))
    for loop in loops:
        loop.done.set()
        loop.join(timeout=30)

    seen = set()
    for loop in loops:
        assert loop.failures == []
        for version, labels, start, stop in loop.answers:
            seen.add(version)
            assert np.array_equal(labels, wanted[int(version)][start:stop]), (version, start, stop)
        assert loop.answers[-1][0] == "2"  # every client ends on the new version
    assert seen == {"1", "2"}
    assert "now answers with version 2" in following.log()


def test_a_version_that_cannot_load_leaves_the_one_serving_and_is_reported(
    following, churn_registry, churn_packages, churn_rows
):
    _, client = churn_registry
    client.set_alias("churn", "champion", 2)
    wait_for(lambda: served_version(following.url) == "2")
    client.set_alias("churn", "champion", 3)
    wait_for(lambda: "could not load version 3" in following.log())
    metrics = httpx.get(f"{following.url}/metrics", timeout=10).text
    failures = re.search(
        r'^quayside_model_load_failures_total\{model="churn"\} ([0-9.]+)$', metrics, re.MULTILINE
    )
    assert failures is not None and float(failures.group(1)) >= 1
    assert httpx.get(f"{following.url}/v2/health/ready", timeout=5).status_code == 200
    assert served_version(following.url) == "2"
    version, labels = rest_call(following.url)(churn_rows)
    assert version == "2" and np.array_equal(labels, expected(churn_packages, 2, churn_rows))
    assert "version 2 keeps serving" in following.log()
    client.set_alias("churn", "champion", 2)
