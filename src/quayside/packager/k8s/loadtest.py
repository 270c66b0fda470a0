"""Kubernetes manifests of a load test run inside a cluster, with Locust's distributed mode; pure, no cluster needed.

A load test ``NAME`` is a ConfigMap ``NAME`` (a standalone locustfile and the request
bodies generated from the model's signature), a Job ``NAME-master`` running Locust's
master headless for the run's duration (its log ends with Locust's summary, as JSON), a
Service ``NAME-master`` the workers reach it by, and a Deployment ``NAME-workers`` of
``workers`` replicas, each one Locust worker. The pods run Locust's own image: the
locustfile needs nothing but Locust, so HTTP (V2, ``/invocations``) payloads only.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from quayside.errors import UsageError
from quayside.names import check_dns_label
from quayside.packager.k8s.render import NAME_LABEL, Manifest, label_value, yaml_quote

COMPONENT_LABEL = "app.kubernetes.io/component"
LOCUST_UID = 1000
"""The ``locust`` user of Locust's image (numeric, so that ``runAsNonRoot`` can be checked)."""
MASTER_PORT = 5557
MOUNT_PATH = "/home/locust/quayside"
MAX_CONFIGMAP_BYTES = 1024 * 1024
"""What one ConfigMap may hold (etcd's limit on an object)."""
MAX_NAME = 63 - len("-workers")
START_ALLOWANCE_S = 600
"""How long past the run's duration the master's Job may take (image pulls, workers connecting)."""
DEFAULT_LOCUST_IMAGE = "locustio/locust:2.47.0"
"""Locust's image at the version the locustfile is written for (pass another with --locust-image)."""
_NOT_IN_LABEL = re.compile(r"[^a-z0-9-]+")


def default_loadtest_name(model_name: str) -> str:
    """``loadtest-MODEL``, made a DNS label short enough for ``-workers`` and ``-master``."""
    stem = _NOT_IN_LABEL.sub("-", model_name.lower()).strip("-") or "model"
    return f"loadtest-{stem}"[:MAX_NAME].rstrip("-")


@dataclass(frozen=True)
class LoadTestSpec:
    """Everything an in-cluster load test is rendered from."""

    name: str
    host: str
    """The model server's base URL as the cluster resolves it, e.g. ``http://diabetes.models.svc``."""
    model_name: str
    path: str
    content_type: str
    bodies: tuple[str, ...]
    users: int
    spawn_rate: float
    duration_s: float
    workers: int = 1
    namespace: str = "default"
    image: str = DEFAULT_LOCUST_IMAGE
    cpu: str = "1"
    memory: str = "512Mi"

    def __post_init__(self) -> None:
        check_dns_label("load test", self.name, max_length=MAX_NAME)
        check_dns_label("namespace", self.namespace)
        if not self.host.startswith(("http://", "https://")):
            raise UsageError(f"the in-cluster target must be an http(s):// URL, not '{self.host}'")
        if self.workers < 1 or self.users < self.workers:
            raise UsageError(f"--workers must be between 1 and --users ({self.users}), not {self.workers}")
        if not self.bodies:
            raise UsageError("a load test needs at least one request body")


def _template(name: str) -> Any:
    import jinja2  # a core dependency, imported here to keep `import quayside` fast

    def load(template: str) -> str:
        return resources.files(__package__).joinpath(f"templates/{template}.yaml.j2").read_text("utf-8")

    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(load), autoescape=False, undefined=jinja2.StrictUndefined
    )
    env.filters["tojson"] = yaml_quote
    return env.get_template(name)


def _render(template: str, **values: Any) -> Manifest:
    import yaml

    return yaml.safe_load(_template(template).render(**values))


def locustfile() -> str:
    """The standalone locustfile the pods run (it reads ``payloads.json`` beside it)."""
    return resources.files(__package__).joinpath("templates/loadtest-locustfile.py.j2").read_text("utf-8")


def loadtest_files(spec: LoadTestSpec) -> dict[str, str]:
    """The ConfigMap's files: ``locustfile.py`` and ``payloads.json``; refused when over a ConfigMap's size."""
    payloads = {"path": spec.path, "content_type": spec.content_type, "bodies": list(spec.bodies)}
    files = {"locustfile.py": locustfile(), "payloads.json": json.dumps(payloads, separators=(",", ":"))}
    size = sum(len(text.encode()) for text in files.values())
    if size > MAX_CONFIGMAP_BYTES:
        raise UsageError(
            f"the request bodies take {size // 1024} KiB, over the {MAX_CONFIGMAP_BYTES // 1024} KiB a "
            "ConfigMap holds: use fewer --rows per request"
        )
    return files


def run_time(duration_s: float) -> str:
    """Locust's ``--run-time`` for a duration (whole seconds, rounded up: Locust takes no fractions)."""
    return f"{max(1, math.ceil(duration_s))}s"


def _values(spec: LoadTestSpec) -> dict[str, Any]:
    base = {NAME_LABEL: spec.name, "app.kubernetes.io/managed-by": "quayside"}
    labels = {
        **base,
        "app.kubernetes.io/part-of": "quayside-loadtest",
        "quayside.io/model": label_value(spec.model_name),
    }
    master_selector = {NAME_LABEL: spec.name, COMPONENT_LABEL: "locust-master"}
    worker_selector = {NAME_LABEL: spec.name, COMPONENT_LABEL: "locust-worker"}
    locustfile_path = f"{MOUNT_PATH}/locustfile.py"
    master_name = f"{spec.name}-master"
    master_args = [
        "-f", locustfile_path, "--master", "--master-bind-port", str(MASTER_PORT), "--headless",
        "--expect-workers", str(spec.workers), "--expect-workers-max-wait", str(START_ALLOWANCE_S),
        "--users", str(spec.users), "--spawn-rate", f"{spec.spawn_rate:g}", "--run-time", run_time(spec.duration_s),
        "--host", spec.host, "--only-summary", "--json", "--exit-code-on-error", "1",
    ]  # fmt: skip
    worker_args = [
        "-f", locustfile_path, "--worker", "--master-host", f"{master_name}.{spec.namespace}.svc",
        "--master-port", str(MASTER_PORT),
    ]  # fmt: skip
    return {
        "name": spec.name,
        "namespace": spec.namespace,
        "labels": labels,
        "annotations": {"quayside.io/target": spec.host, "quayside.io/path": spec.path},
        "master_name": master_name,
        "workers_name": f"{spec.name}-workers",
        "master_selector": master_selector,
        "worker_selector": worker_selector,
        "master_labels": {**labels, **master_selector},
        "worker_labels": {**labels, **worker_selector},
        "master_port": MASTER_PORT,
        "master_args": master_args,
        "worker_args": worker_args,
        "workers": spec.workers,
        "deadline_s": math.ceil(spec.duration_s) + START_ALLOWANCE_S,
        "image": spec.image,
        "cpu": spec.cpu,
        "memory": spec.memory,
        "uid": LOCUST_UID,
        "mount_path": MOUNT_PATH,
    }


def render_loadtest(spec: LoadTestSpec) -> list[Manifest]:
    """ConfigMap, master Service, master Job and workers Deployment, in the order they are applied."""
    values = _values(spec)
    return [
        _render("loadtest-configmap", files=loadtest_files(spec), **values),
        _render("loadtest-master-service", **values),
        _render("loadtest-master-job", **values),
        _render("loadtest-workers", **values),
    ]
