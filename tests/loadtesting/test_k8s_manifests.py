"""``quayside loadtest --target-kubernetes``: manifests for Locust's master and workers inside a cluster.

They validate against the official Kubernetes schemas (as the model manifests do, strict), and
the locustfile and commands they hold run as they are: Locust's own master and two workers,
from the rendered arguments, load a real server.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from quayside.errors import UsageError
from quayside.packager.k8s.loadtest import LoadTestSpec, default_loadtest_name, render_loadtest, run_time
from tests.loadtesting.conftest import run_cli

KUBERNETES_VERSION = kubernetes_validate.latest_version()
SPEC = LoadTestSpec(
    name="loadtest-diabetes",
    host="http://diabetes.models.svc",
    model_name="diabetes",
    path="/v2/models/diabetes/infer",
    content_type="application/json",
    bodies=('{"inputs":[]}',),
    users=12,
    spawn_rate=4,
    duration_s=30,
    workers=3,
    namespace="models",
)
LOCUST = str(Path(sys.executable).parent / "locust")


def by_kind(manifests: list[dict]) -> dict[str, dict]:
    return {m["kind"]: m for m in manifests}


def _container(manifest: dict) -> dict:
    [container] = manifest["spec"]["template"]["spec"]["containers"]
    return container


def _flag(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_every_manifest_validates_against_the_official_schema():
    manifests = render_loadtest(SPEC)
    assert [m["kind"] for m in manifests] == ["ConfigMap", "Service", "Job", "Deployment"]
    for manifest in manifests:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_the_workers_are_a_deployment_of_workers_replicas_that_find_the_master_by_its_service():
    manifests = by_kind(render_loadtest(SPEC))
    workers, job, service = manifests["Deployment"], manifests["Job"], manifests["Service"]
    assert workers["metadata"]["name"] == "loadtest-diabetes-workers" and workers["spec"]["replicas"] == 3
    worker_args = _container(workers)["args"]
    assert "--worker" in worker_args
    assert _flag(worker_args, "--master-host") == "loadtest-diabetes-master.models.svc"
    assert _flag(worker_args, "--master-port") == str(service["spec"]["ports"][0]["port"]) == "5557"
    master_args = _container(job)["args"]
    assert "--master" in master_args and "--headless" in master_args
    assert _flag(master_args, "--expect-workers") == "3" and _flag(master_args, "--users") == "12"
    assert (
        _flag(master_args, "--run-time") == "30s"
        and _flag(master_args, "--host") == "http://diabetes.models.svc"
    )
    # the Service selects the master's pod, and only it
    selector = service["spec"]["selector"]
    assert selector.items() <= job["spec"]["template"]["metadata"]["labels"].items()
    assert not selector.items() <= workers["spec"]["template"]["metadata"]["labels"].items()
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_the_configmap_holds_the_locustfile_and_the_bodies_and_every_pod_mounts_it():
    manifests = by_kind(render_loadtest(SPEC))
    data = manifests["ConfigMap"]["data"]
    assert set(data) == {"locustfile.py", "payloads.json"}
    compile(data["locustfile.py"], "locustfile.py", "exec")
    assert json.loads(data["payloads.json"])["bodies"] == ['{"inputs":[]}']
    for kind in ("Job", "Deployment"):
        pod = manifests[kind]["spec"]["template"]["spec"]
        [volume] = [v for v in pod["volumes"] if "configMap" in v]
        assert volume["configMap"]["name"] == "loadtest-diabetes"
        mount = next(m for m in _container(manifests[kind])["volumeMounts"] if m["name"] == volume["name"])
        assert _flag(_container(manifests[kind])["args"], "-f") == f"{mount['mountPath']}/locustfile.py"
        assert pod["securityContext"]["runAsNonRoot"] is True


def test_bodies_over_what_a_configmap_holds_are_refused():
    with pytest.raises(UsageError, match="fewer --rows"):
        render_loadtest(LoadTestSpec(**{**SPEC.__dict__, "bodies": ("x" * 600_000, "y" * 600_000)}))


@pytest.mark.parametrize(
    ("change", "message"),
    [({"name": "Load_Test"}, "DNS label"), ({"workers": 13}, "--workers"), ({"host": "diabetes:80"}, "http")],
)
def test_a_spec_that_cannot_run_is_refused(change, message):
    with pytest.raises(UsageError, match=message):
        LoadTestSpec(**{**SPEC.__dict__, **change})


def test_names_and_run_times_are_made_to_fit():
    assert default_loadtest_name("Diabetes_Regressor.v2") == "loadtest-diabetes-regressor-v2"
    assert len(default_loadtest_name("m" * 80)) <= 55
    assert (run_time(2.5), run_time(0.2), run_time(60)) == ("3s", "1s", "60s")


def test_the_cli_prints_manifests_that_validate(tensor_input_package):
    result = run_cli(
        "loadtest", "http://diabetes.models.svc/v2/models/diabetes", "--model", str(tensor_input_package),
        "--target-kubernetes", "--dry-run", "-o", "yaml", "--workers", "3", "--users", "12",
        "--namespace", "models", "--duration", "45s", "--rows", "2",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    manifests = list(yaml.safe_load_all(result.stdout))
    for manifest in manifests:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        assert manifest["metadata"]["namespace"] == "models"
    manifests_by_kind = by_kind(manifests)
    assert manifests_by_kind["Deployment"]["spec"]["replicas"] == 3
    assert _flag(_container(manifests_by_kind["Job"])["args"], "--run-time") == "45s"
    payloads = json.loads(manifests_by_kind["ConfigMap"]["data"]["payloads.json"])
    assert payloads["path"] == "/v2/models/diabetes/infer" and len(payloads["bodies"]) == 64
    [tensor] = json.loads(payloads["bodies"][0])["inputs"]
    assert tensor["shape"] == [2, 10]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--protocol", "grpc"], "no gRPC client"),
        (["--slo", "p95_ms<=10"], "--slo cannot go with --target-kubernetes"),
        (["-o", "json"], "takes 'yaml'"),
    ],
)
def test_what_an_in_cluster_run_cannot_do_is_refused_in_one_line(tensor_input_package, args, message):
    result = run_cli(
        "loadtest", "http://diabetes.models.svc/v2/models/diabetes", "--model", str(tensor_input_package),
        "--target-kubernetes", "--dry-run", *args,
    )  # fmt: skip
    assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr


def test_an_in_cluster_run_needs_the_servers_url_and_the_package(tensor_input_package):
    by_path = run_cli("loadtest", str(tensor_input_package), "--target-kubernetes", "--dry-run")
    assert by_path.returncode == 1 and "as the cluster resolves it" in by_path.stderr
    no_model = run_cli(
        "loadtest", "http://diabetes.models.svc/v2/models/diabetes", "--target-kubernetes", "--dry-run"
    )
    assert no_model.returncode == 1 and "needs --model" in no_model.stderr
    stray = run_cli("loadtest", "http://127.0.0.1:9/v2/models/x", "--dry-run")
    assert stray.returncode == 1 and "go with --target-kubernetes" in stray.stderr


def test_the_rendered_locustfile_and_commands_load_a_real_server_with_a_master_and_two_workers(
    tensor_input_server, tensor_input_package, tmp_path
):
    from quayside.compose.loadtest import free_port, in_cluster_manifests, package_inputs
    from quayside.loadtesting.runner import LoadOptions

    inputs = package_inputs(str(tensor_input_package))
    options = LoadOptions(users=4, spawn_rate=4, duration_s=2, workers=2)
    manifests = by_kind(
        in_cluster_manifests(
            host="http://diabetes.default.svc", model_name="diabetes", schema=inputs.schema,
            example=inputs.example, protocol="v2", rows=1, options=options,
        )
    )  # fmt: skip
    for name, text in manifests["ConfigMap"]["data"].items():
        (tmp_path / name).write_text(text)
    port = str(free_port())
    locustfile = str(tmp_path / "locustfile.py")

    def local(args: list[str], **replacements: str) -> list[str]:
        """The pod's arguments, with the mount path, the master's address and the server's URL made local."""
        args = list(args)
        args[args.index("-f") + 1] = locustfile
        for flag, value in replacements.items():
            args[args.index(flag) + 1] = value
        return args

    master_args = local(
        _container(manifests["Job"])["args"],
        **{"--master-bind-port": port, "--host": tensor_input_server.url},
    )
    worker_args = local(
        _container(manifests["Deployment"])["args"], **{"--master-host": "127.0.0.1", "--master-port": port}
    )
    master = subprocess.Popen(
        [LOCUST, *master_args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    workers = [
        subprocess.Popen([LOCUST, *worker_args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(2)
    ]
    try:
        stdout, stderr = master.communicate(timeout=90)
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    assert master.returncode == 0, stderr[-2000:]
    stats = json.loads(stdout[stdout.index("[") :])
    [entry] = [s for s in stats if s["name"] == "/v2/models/diabetes/infer"]
    assert entry["num_requests"] > 10 and entry["num_failures"] == 0
