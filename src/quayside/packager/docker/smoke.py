"""The smoke test of a built image: run it, time its cold start and first answer, compare with the golden outputs.

The image is started the way ``quayside deploy`` starts it (host network, its own
non-root user, ``PORT`` and ``WORKERS=1``), on a free port. Cold start is the time
from asking the engine to start the container to the first ready answer of
``/v2/health/ready``; first inference is the latency of the input example sent to
``/invocations`` right after. The example then goes through V2 as well, and both
answers are compared with the outputs the model gave when it was saved
(:func:`quayside.packager.golden.check_outputs`: labels exactly, floats within the
package's parity tolerance). The container is removed whatever happens; a failure
is a :class:`~quayside.errors.BuildCheckError` carrying the container's last log lines.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from quayside.errors import BuildCheckError, QuaysideError
from quayside.packager.bodies import invocations_body, invocations_outputs, v2_body, v2_outputs
from quayside.packager.example import decode_example
from quayside.packager.golden import check_outputs
from quayside.packager.labels import SMOKE_LABEL
from quayside.packager.manifest import Manifest

Log = Callable[[str], None]

DEFAULT_SMOKE_TIMEOUT_S = 60.0
LOG_LINES = 20
"""How many of the container's last log lines a failure carries."""
_ROOT_USERS = ("", "0", "root", "0:0", "root:root")


@dataclass(frozen=True)
class SmokeResult:
    """What the smoke test measured and checked."""

    cold_start_s: float
    first_inference_ms: float | None
    """None when the package has no input example to send."""
    detail: str
    """One line: what was compared (or why nothing could be)."""


def free_port() -> int:
    """A TCP port nothing listens on now (the kernel's pick), for a container on the host network."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _post(url: str, body: dict[str, Any], timeout_s: float) -> tuple[float, Any]:
    """(milliseconds, decoded JSON answer) of one POST; a non-200 answer fails with its text."""
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            payload = response.read()
    except urllib.error.HTTPError as e:
        text = e.read().decode("utf-8", "replace")[:500]
        raise BuildCheckError(
            f"smoke test failed: the image answered the input example with HTTP {e.code}: {text}"
        ) from None
    except (urllib.error.URLError, OSError) as e:
        raise BuildCheckError(
            f"smoke test failed: the image did not answer the input example ({e})"
        ) from None
    elapsed_ms = (time.perf_counter() - started) * 1000
    try:
        return elapsed_ms, json.loads(payload)
    except ValueError:
        raise BuildCheckError(
            "smoke test failed: the image answered the input example with a body that is not JSON"
        ) from None


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def log_tail(container: Any, lines: int = LOG_LINES) -> str:
    """The container's last log lines, one per line (or a note that there are none)."""
    try:
        text = container.logs(tail=lines).decode("utf-8", "replace")
    except Exception:  # the logs are a courtesy in an error message; the error is the point
        return "(the engine gave no logs)"
    kept = [line.rstrip() for line in text.splitlines() if line.strip()]
    return "\n".join(kept) or "(the container logged nothing)"


def _non_root_user(client: Any, image: str) -> str:
    user = str((client.images.get(image).attrs.get("Config") or {}).get("User") or "")
    if user in _ROOT_USERS:
        raise BuildCheckError(
            f"smoke test refused: the image {image} runs as root (USER {user or 'unset'}); images must not"
        )
    return user


def _wait_until_ready(container: Any, port: int, timeout_s: float, started: float) -> float:
    """Seconds from ``started`` until the container answers ready; fails if it exits or times out."""
    deadline = started + timeout_s
    while time.perf_counter() < deadline:
        container.reload()
        if container.status in ("exited", "dead"):
            code = container.attrs.get("State", {}).get("ExitCode")
            tail = log_tail(container)
            hint = ""
            if "ImportError" in tail or "ModuleNotFoundError" in tail or "No module named" in tail:
                hint = (
                    " The image lacks a module the model needs: add its distribution to the package's "
                    "environment requirements (quayside.yaml, environment.requirements) and build again."
                )
            raise BuildCheckError(
                f"smoke test failed: the container exited (code {code}) before it served.{hint} "
                f"Its last log lines:\n{tail}"
            )
        if _ready(port):
            return time.perf_counter() - started
        time.sleep(0.05)
    raise BuildCheckError(
        f"smoke test failed: the container was not ready within {timeout_s:g} s (--smoke-timeout). "
        f"Its last log lines:\n{log_tail(container)}"
    )


def _check_answers(
    manifest: Manifest, port: int, model_name: str, timeout_s: float
) -> tuple[float | None, str]:
    """(first inference ms, what was compared): the example through /invocations, then V2."""
    if manifest.input_example is None:
        return None, "ready; no input example to send, so no answer was checked"
    inputs = manifest.signature.inputs
    example = decode_example(manifest.input_example, inputs)
    base = f"http://127.0.0.1:{port}"
    first_ms, invocations = _post(f"{base}/invocations", invocations_body(example, inputs), timeout_s)
    _, v2 = _post(f"{base}/v2/models/{model_name}/infer", v2_body(example, inputs), timeout_s)
    golden = manifest.golden_outputs()
    if not golden:
        return first_ms, f"answered /invocations and V2; not compared: {manifest.golden_missing}"
    tolerance = manifest.parity_tolerance()
    answers = {
        "/invocations": invocations_outputs(invocations, manifest.signature.outputs),
        "V2": v2_outputs(v2),
    }
    for protocol, answer in answers.items():
        differences = check_outputs(golden, answer, tolerance)
        if differences:
            raise BuildCheckError(
                f"smoke test failed: over {protocol} the image answers the input example differently "
                "from the model's golden outputs (what it answered when saved): "
                + "; ".join(str(d) for d in differences)
            )
    return first_ms, (
        f"answered /invocations and V2 as the golden outputs say ({len(golden)} output"
        f"{'s' if len(golden) != 1 else ''}, rtol {tolerance.rtol:g}, atol {tolerance.atol:g})"
    )


def smoke_test(
    client: Any,
    image: str,
    *,
    manifest: Manifest,
    model_name: str,
    timeout_s: float = DEFAULT_SMOKE_TIMEOUT_S,
    log: Log,
) -> SmokeResult:
    """Run ``image`` once, time it, check its answers; :class:`BuildCheckError` says why it failed."""
    from docker.errors import APIError

    user = _non_root_user(client, image)
    port = free_port()
    log(f"smoke test: starting {image} as user {user} on port {port}")
    started = time.perf_counter()
    try:
        container = client.containers.run(
            image,
            detach=True,
            name=f"quayside-smoke-{uuid.uuid4().hex[:12]}",
            network_mode="host",
            # Its own gRPC port too: on the host network the image's default (8081) may be taken.
            environment={"PORT": str(port), "GRPC_PORT": str(free_port()), "WORKERS": "1"},
            labels={SMOKE_LABEL: "1"},
        )
    except APIError as e:
        raise BuildCheckError(
            f"smoke test failed: the engine could not start {image} ({e.explanation})"
        ) from None
    try:
        cold_start_s = _wait_until_ready(container, port, timeout_s, started)
        log(f"smoke test: ready in {cold_start_s:.2f} s; sending the input example")
        try:
            first_ms, detail = _check_answers(manifest, port, model_name, timeout_s)
        except BuildCheckError as e:
            raise BuildCheckError(
                f"{e.message}\nThe container's last log lines:\n{log_tail(container)}"
            ) from None
        except QuaysideError as e:
            raise BuildCheckError(f"smoke test failed: {e.message}") from None
    finally:
        with contextlib.suppress(APIError):  # already gone: nothing is left to clean
            container.remove(force=True)
    return SmokeResult(cold_start_s=cold_start_s, first_inference_ms=first_ms, detail=detail)
