"""Errors tell the client what it can act on, and nothing about the deployment.

No response body (REST, the MLflow adapter, UI pages, and hence the Python client and
the CLI talking to a server) names the database URL, its driver, user, host, port or
database name, the artifact root, ``QUAYSIDE_HOME`` or a scratch directory. The server
log keeps the detail, under the request id that 5xx bodies name.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import tarfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from quayside.errors import QuaysideError, UnavailableError
from quayside.tracking.rest import RestBackend
from tests.db import fixtures

CLIENT_TIMEOUT_S = 60  # a hang guard only


class CuttableProxy:
    """A TCP proxy from a free local port to PostgreSQL that can be cut, as a network failure would.

    The shared PostgreSQL keeps running for everyone else; only this proxy's path to it dies.
    """

    def __init__(self, upstream: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # cut
            server = socket.create_connection(self.upstream)
            with self.lock:
                self.sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Refuse new connections and break every open one."""
        # shutdown, not just close: a close leaves a thread's pending accept() accepting.
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self.lock:
            for end in self.sockets:
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()


def written_so_far(server: fixtures.Server) -> str:
    """What the server has written to its stderr (its log) until now, without waiting for more."""
    stream = server.process.stderr  # type: ignore[union-attr]
    os.set_blocking(stream.fileno(), False)
    return (stream.read() or b"").decode()


@dataclass
class DownServer:
    server: fixtures.Server
    database: str
    proxy_port: int
    run_id: str
    experiment_id: int

    def private_strings(self) -> list[str]:
        """What a body must not name: the URL and each of its parts."""
        return [
            "postgresql",
            "psycopg",
            "postgres@",
            "127.0.0.1",
            "5432",
            str(self.proxy_port),
            self.database,
            str(self.server.home),
        ]


@pytest.fixture(scope="module")
def down_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DownServer]:
    """A real server on PostgreSQL (through a proxy) that then loses its database."""
    database = fixtures.create_postgres_database()
    proxy = CuttableProxy()
    home = tmp_path_factory.mktemp("pg-down")
    server = fixtures.Server(home, f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/{database}")
    try:
        server.start()
        with httpx.Client(base_url=server.url, timeout=CLIENT_TIMEOUT_S) as http:
            experiment = http.post("/api/tracking/experiments", json={"name": "down"}).json()
            run = http.post("/api/tracking/runs", json={"experiment_id": experiment["id"]}).json()
        proxy.cut()
        yield DownServer(server, database, proxy.port, run["id"], experiment["id"])
    finally:
        server.stop()
        proxy.cut()
        fixtures.drop_postgres_database(database)


def _requests_while_down(run_id: str, experiment_id: int) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        ("GET", "/api/tracking/experiments", {}),
        ("POST", "/api/tracking/experiments", {"json": {"name": "new"}}),
        ("GET", f"/api/tracking/experiments/{experiment_id}", {}),
        ("GET", f"/api/tracking/runs/{run_id}", {}),
        ("POST", f"/api/tracking/runs/{run_id}/batch", {"json": {"params": {"p": "1"}}}),
        ("POST", "/api/tracking/runs/search", {"json": {"filter": "params.p = '1'"}}),
        (
            "PUT",
            f"/api/tracking/runs/{run_id}/artifacts/file",
            {"params": {"path": "a.txt"}, "content": b"x"},
        ),
        ("GET", "/api/registry/models", {}),
        ("POST", "/api/registry/models", {"json": {"name": "m"}}),
        ("POST", "/api/2.0/mlflow/experiments/search", {"json": {"max_results": 10}}),
        (
            "POST",
            "/api/2.0/mlflow/runs/log-metric",
            {"json": {"run_id": run_id, "key": "k", "value": 1, "timestamp": 1}},
        ),
        ("GET", f"/api/2.0/mlflow/runs/get?run_id={run_id}", {}),
        ("GET", "/", {"headers": {"accept": "text/html"}}),
        ("GET", f"/runs/{run_id}", {"headers": {"accept": "text/html"}}),
        ("GET", "/health/ready", {}),
    ]


def test_while_postgresql_is_down_every_answer_is_a_503_naming_nothing_of_the_database(
    down_server: DownServer,
):
    requests = _requests_while_down(down_server.run_id, down_server.experiment_id)
    request_ids = []
    with httpx.Client(base_url=down_server.server.url, timeout=CLIENT_TIMEOUT_S) as http:
        for method, url, kwargs in requests:
            response = http.request(method, url, **kwargs)
            assert response.status_code == 503, (method, url, response.status_code, response.text)
            assert int(response.headers["retry-after"]) >= 1, url
            for private in down_server.private_strings():
                assert private not in response.text, (url, private, response.text)
            assert "retry" in response.text, url
            request_id = response.headers["x-request-id"]
            assert request_id in response.text, url  # what a user pastes into a report
            request_ids.append(request_id)
        # Liveness does not depend on the database.
        assert http.get("/health").status_code == 200

    # The log keeps what the bodies leave out, under each request's id.
    log = written_so_far(down_server.server)
    for request_id in request_ids[:-1]:  # the readiness probe's timeout has no driver detail to log
        line = next(line for line in log.splitlines() if f"request {request_id}:" in line)
        assert (
            f"postgresql+psycopg://postgres@127.0.0.1:{down_server.proxy_port}/{down_server.database}" in line
        )


def test_the_python_client_of_a_server_whose_database_is_down_sees_the_public_message_only(
    down_server: DownServer,
):
    backend = RestBackend(down_server.server.url, timeout_s=CLIENT_TIMEOUT_S)
    try:
        calls: list[Callable[[], object]] = [
            backend.list_experiments,
            lambda: backend.get_run(down_server.run_id),
            lambda: backend.log_batch(down_server.run_id, [], {"p": "2"}, {}),
        ]
        for call in calls:
            with pytest.raises(UnavailableError) as caught:
                call()
            for private in down_server.private_strings():
                assert private not in str(caught.value)
    finally:
        backend.close()


def test_the_cli_against_a_server_whose_database_is_down_prints_one_line_naming_nothing_of_it(
    down_server: DownServer,
):
    result = subprocess.run(
        [fixtures.QUAYSIDE, "experiments", "list"],
        env=fixtures.clean_env(QUAYSIDE_TRACKING_URI=down_server.server.url),
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT_S,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: the tracking database is unavailable; retry later")
    assert "Traceback" not in result.stderr
    for private in down_server.private_strings():
        if private != "127.0.0.1":  # the server's own address, which the user gave
            assert private not in result.stderr


# --- paths on the server's disk -----------------------------------------------------------


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            member = tarfile.TarInfo(name)
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


@dataclass
class PathServer:
    server: fixtures.Server
    run_id: str

    def private_strings(self) -> list[str]:
        home = self.server.home
        return [str(home), str(home.resolve()), "sqlite:", "quayside.db", ".quayside-tmp", "/tmp/"]


@pytest.fixture(scope="module")
def path_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PathServer]:
    home = tmp_path_factory.mktemp("paths")
    server = fixtures.Server(home, f"sqlite:///{home / 'quayside.db'}").start()
    try:
        with httpx.Client(base_url=server.url, timeout=CLIENT_TIMEOUT_S) as http:
            experiment = http.post("/api/tracking/experiments", json={"name": "paths"}).json()
            run_id = http.post("/api/tracking/runs", json={"experiment_id": experiment["id"]}).json()["id"]
            for path, content in {
                "plain/x.txt": b"x",
                "broken/quayside.yaml": b"a: [",
                "listing/quayside.yaml": b"- 1\n",
            }.items():
                url = f"/api/tracking/runs/{run_id}/artifacts/file"
                http.put(url, params={"path": path}, content=content).raise_for_status()
        yield PathServer(server, run_id)
    finally:
        server.stop()


# (what, method, url template, request keywords): each names a file or directory on the server's disk.
PATH_ERRORS: list[tuple[str, str, str, dict[str, Any]]] = [
    (
        "a directory that is no package",
        "POST",
        "/api/tracking/runs/{run}/models",
        {"json": {"path": "plain"}},
    ),
    ("a manifest that is no YAML", "POST", "/api/tracking/runs/{run}/models", {"json": {"path": "broken"}}),
    (
        "a manifest that is no mapping",
        "POST",
        "/api/tracking/runs/{run}/models",
        {"json": {"path": "listing"}},
    ),
    (
        "an artifact that is not there",
        "POST",
        "/api/tracking/runs/{run}/models",
        {"json": {"path": "nothing"}},
    ),
    (
        "an upload without a manifest",
        "POST",
        "/api/registry/models/m/versions",
        {"content": _tar({"x": b"x"})},
    ),
    (
        "an upload whose manifest is no YAML",
        "POST",
        "/api/registry/models/m/versions",
        {"content": _tar({"quayside.yaml": b"a: ["})},
    ),
    (
        "an upload whose manifest is a list",
        "POST",
        "/api/registry/models/m/versions",
        {"content": _tar({"quayside.yaml": b"- 1"})},
    ),
    ("an upload that is no tar", "POST", "/api/registry/models/m/versions", {"content": b"not a tar"}),
    ("a directory as a file", "GET", "/api/tracking/runs/{run}/artifacts/file?path=plain", {}),
    ("an MLflow download of a directory", "GET", "/api/2.0/mlflow-artifacts/artifacts/{run}/plain", {}),
    (
        "a UI artifact view of a directory",
        "GET",
        "/runs/{run}/artifacts/view?path=plain",
        {"headers": {"accept": "text/html"}},
    ),
]


@pytest.mark.parametrize(
    ("what", "method", "url", "kwargs"), PATH_ERRORS, ids=[case[0] for case in PATH_ERRORS]
)
def test_error_bodies_name_no_path_on_the_server(
    path_server: PathServer, what: str, method: str, url: str, kwargs: dict[str, Any]
):
    with httpx.Client(base_url=path_server.server.url, timeout=CLIENT_TIMEOUT_S) as http:
        response = http.request(method, url.format(run=path_server.run_id), **kwargs)
    assert 400 <= response.status_code < 500, (what, response.status_code, response.text)
    for private in path_server.private_strings():
        assert private not in response.text, (what, private, response.text)


def test_the_python_client_of_the_server_sees_what_is_wrong_with_a_package_but_not_where_it_lies(
    path_server: PathServer,
):
    backend = RestBackend(path_server.server.url, timeout_s=CLIENT_TIMEOUT_S)
    try:
        with pytest.raises(QuaysideError) as caught:
            backend.record_model(path_server.run_id, "broken")
    finally:
        backend.close()
    assert "is not valid YAML" in caught.value.message
    for private in path_server.private_strings():
        assert private not in str(caught.value)


# --- request ids ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("trace-42", True),
        ("a" * 128, True),
        ("a" * 129, False),
        ("two words", False),
        ("tab\tinside", False),
        ("", False),
        ("caf\u00e9", False),
    ],
)
def test_a_sane_request_id_is_echoed_and_any_other_is_replaced(
    path_server: PathServer, sent: str, kept: bool
):
    headers = {"x-request-id": sent.encode("latin-1")} if sent else {}
    with httpx.Client(base_url=path_server.server.url, timeout=CLIENT_TIMEOUT_S) as http:
        response = http.get("/health", headers=headers)
    assert response.status_code == 200
    echoed = response.headers["x-request-id"]
    assert (echoed == sent) is kept
    assert echoed and echoed.isprintable() and " " not in echoed


# --- the CLI on the user's own machine ----------------------------------------------------


def test_the_local_cli_names_its_own_unreachable_database_without_the_password(tmp_path: Path):
    """On the user's own machine the detail is theirs: the CLI shows the (redacted) URL and the cause."""
    result = subprocess.run(
        [fixtures.QUAYSIDE, "experiments", "list"],
        env=fixtures.clean_env(
            QUAYSIDE_HOME=str(tmp_path),
            QUAYSIDE_DB_URL="postgresql+psycopg://quayside:s3cret@127.0.0.1:1/nothing",
        ),
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT_S,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot open the database; retry later (")
    assert "postgresql+psycopg://quayside:***@127.0.0.1:1/nothing" in result.stderr
    assert "s3cret" not in result.stderr
    assert "Traceback" not in result.stderr
