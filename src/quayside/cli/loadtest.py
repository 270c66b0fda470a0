"""``quayside loadtest TARGET``: load a running server or a model served here, report, judge against SLOs.

TARGET is a server URL (``http://HOST:PORT/v2/models/NAME``, or the base URL with
``--model-name``/``--model``) or a model package/URI, which is then served on a
free local port for the test and stopped afterwards. ``--protocol grpc`` calls
``ModelInfer`` over gRPC instead: at ``--grpc-target HOST:PORT`` (default: the URL's host
on port 8081), or on a free port the model served here listens on. Payload rows come from the
model's signature and input example: from ``--model`` (or the MODEL_URI itself)
when given, else from the server's V2 metadata with placeholder ranges.

``--register NAME VERSION`` stores the report with that registered version, where the
registry (local or a server) judges it against the model's promotion policy; the
policy's SLO judges the run here too unless ``--slo`` is given.

``--workers N`` runs Locust's distributed mode here: its master in this process and N
local worker processes, folded into the one report. ``--target-kubernetes`` renders (with
``--dry-run -o yaml``) or applies manifests that run the load test inside a cluster instead,
against TARGET as the cluster resolves it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

import typer

from quayside.cli.console import err, out, out_raw, styled
from quayside.cli.options import registry_client
from quayside.cli.tables import print_judgement, print_summary, print_verdict
from quayside.compose.loadtest import (
    PackageInputs,
    grpc_port_for,
    in_cluster_manifests,
    local_grpc_target,
    package_inputs,
    parse_duration,
    register_report,
    run_and_report,
    served_locally,
)
from quayside.errors import UsageError

if TYPE_CHECKING:
    from quayside.compose.clients import RegistryClient

DEFAULT_REPORTS_DIR = Path("loadtest-reports")


class Registration(NamedTuple):
    """Where ``--register`` stores the report: the registry, and the version it is of."""

    client: RegistryClient
    name: str
    version: int


def loadtest(
    target: Annotated[
        str,
        typer.Argument(
            help="Server URL (http://HOST:PORT/v2/models/NAME) or a model package/URI to serve here.",
            show_default=False,
        ),
    ],
    users: Annotated[int, typer.Option(help="Simulated users, each sending back to back.", min=1)] = 32,
    spawn_rate: Annotated[float, typer.Option(help="Users started per second.", min=0.001)] = 8.0,
    duration: Annotated[str, typer.Option(help="How long to load: 30s, 2m, 500ms.")] = "30s",
    rows: Annotated[int, typer.Option(help="Rows per request.", min=1)] = 1,
    protocol: Annotated[str, typer.Option(help="v2, invocations or grpc.")] = "v2",
    grpc_target: Annotated[
        str | None,
        typer.Option(
            help="With --protocol grpc and a URL TARGET: the server's gRPC HOST:PORT "
            "(default: the URL's host, port 8081).",
            show_default=False,
        ),
    ] = None,
    slo: Annotated[
        str | None,
        typer.Option(help="Objectives, e.g. 'p95_ms<=25,p99_ms<=60,error_rate<=0.001,rps>=300'."),
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Report directory (default: loadtest-reports/REPORT_ID).")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="With a URL TARGET: the package/URI whose example bounds the payload rows."),
    ] = None,
    model_name: Annotated[
        str | None, typer.Option(help="With a base-URL TARGET: the served model's name.")
    ] = None,
    trust: Annotated[
        bool, typer.Option("--trust", help="Serving a MODEL_URI here: allow a pickled native model.")
    ] = False,
    register: Annotated[
        tuple[str, int] | None,
        typer.Option(
            "--register",
            metavar="NAME VERSION",
            help="Store the report with this registered version; the registry judges it against the "
            "model's promotion policy (with a URL TARGET, --model names the package that is served).",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            help="Load-generating processes: 1 runs the users here; N runs Locust's master here and N "
            "local worker processes (Locust's distributed mode), or N worker pods with --target-kubernetes.",
            min=1,
        ),
    ] = 1,
    target_kubernetes: Annotated[
        bool,
        typer.Option(
            "--target-kubernetes",
            help="Run the load test inside a cluster instead (Locust's master Job and --workers worker pods); "
            "TARGET is the server's URL as the cluster resolves it, --model names the package.",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="With --target-kubernetes: print the manifests; apply nothing.")
    ] = False,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="With --target-kubernetes: 'yaml' prints the manifests.",
            show_default=False,
        ),
    ] = None,
    namespace: Annotated[str, typer.Option(help="With --target-kubernetes: the namespace.")] = "default",
    locust_image: Annotated[
        str | None,
        typer.Option(
            help="With --target-kubernetes: Locust's image (default locustio/locust at the tested version).",
            show_default=False,
        ),
    ] = None,
    kubeconfig: Annotated[
        str | None,
        typer.Option(
            help="With --target-kubernetes: kubeconfig file (default $KUBECONFIG, ~/.kube/config, or in-cluster).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Load-test a model server with requests generated from the model's signature; judge SLOs.

    Writes report.json and a self-contained report.html (latency and throughput
    over time). Exits 1 when any --slo objective is not met, or when the registry's
    verdict on a --register'ed report fails; 0 otherwise.
    """
    from quayside.loadtesting.payloads import PROTOCOLS
    from quayside.loadtesting.report import new_report_id
    from quayside.loadtesting.runner import LoadOptions
    from quayside.loadtesting.target import default_grpc_target
    from quayside.slo import parse_slo

    objectives = parse_slo(slo) if slo is not None else ()
    if protocol not in PROTOCOLS:
        raise UsageError(f"--protocol must be one of {', '.join(PROTOCOLS)}, not '{protocol}'")
    options = LoadOptions(
        users=users, spawn_rate=spawn_rate, duration_s=parse_duration(duration), workers=workers
    )
    is_url = target.startswith(("http://", "https://"))
    if target_kubernetes:
        refused = {"--slo": slo, "--register": register, "--out": out_dir, "--grpc-target": grpc_target}
        _in_cluster(
            target, model=model, model_name=model_name, protocol=protocol, rows=rows, options=options,
            print_only=dry_run or output is not None, output=output, namespace=namespace,
            image=locust_image, kubeconfig=kubeconfig, refused=refused,
        )  # fmt: skip
        return
    if dry_run or output is not None:
        raise UsageError("--dry-run and -o/--output go with --target-kubernetes")
    grpc_target = _checked_grpc_target(grpc_target, protocol=protocol, is_url=is_url)
    if register is not None and is_url and model is None:
        raise UsageError(
            "--register with a server URL needs --model PACKAGE_OR_URI: the registry binds a report "
            "to the package it tested"
        )
    registration = None if register is None else Registration(registry_client(), *register)
    if registration is not None and slo is None:
        objectives = _policy_objectives(registration)
    report_id = new_report_id()
    directory = out_dir or DEFAULT_REPORTS_DIR / report_id
    with contextlib.ExitStack() as stack:
        if is_url:
            base_url, name, schema, example, inputs = _remote(target, model, model_name)
            tested = None if inputs is None else inputs.tested(kind="server", url=target)
        else:
            inputs = package_inputs(target)
            name, schema, example, tested = inputs.name, inputs.schema, inputs.example, inputs.tested()
        if registration is not None and inputs is not None:
            _check_registered(registration, inputs=inputs, package=model or target)
        if not is_url:
            grpc_port = grpc_port_for(protocol)
            grpc_target = local_grpc_target(grpc_port)
            server = served_locally(
                target, trust=trust, log_path=directory / "server.log", grpc_port=grpc_port, log=err.print
            )
            base_url = stack.enter_context(server)
        if protocol == "grpc" and grpc_target is None:
            grpc_target = default_grpc_target(base_url)
        where = grpc_target if protocol == "grpc" else base_url
        err.print(
            styled("load-testing ", (name, "bold"), f" at {where} ({protocol}) for {options.duration_s:g} s")
        )
        run = run_and_report(
            base_url=base_url,
            model_name=name,
            schema=schema,
            example=example,
            protocol=protocol,
            rows=rows,
            options=options,
            objectives=objectives,
            out_dir=directory,
            report_id=report_id,
            tested=tested,
            grpc_target=grpc_target,
            console=err,
        )
    print_summary(run.report)
    _print_generator(run.report)
    out.print(f"report {report_id}: {run.json_path} and {run.html_path}")
    failed = False
    # Registering without --slo, the run was judged here with the policy's SLO only for the
    # report's own page; the registry's verdict below is the one that counts.
    if run.verdict is not None and (registration is None or slo is not None):
        print_verdict(run.verdict)
        failed = not run.verdict.passed
    if registration is not None:
        stored = register_report(registration.client, registration.name, registration.version, run)
        reports = f"quayside registry reports {registration.name} {registration.version}"
        out.print(
            f"stored as report {stored.id} of models:/{registration.name}/{registration.version} ({reports})"
        )
        print_judgement(stored)
        failed = failed or stored.passed is False
    _print_caveat(run.report)
    if failed:
        raise typer.Exit(1)


def _print_generator(report: dict[str, Any]) -> None:
    from quayside.loadtesting.report import generator_line

    line = generator_line(report)
    if line is not None:
        out.print(line)


def _print_caveat(report: dict[str, Any]) -> None:
    """A saturated load generator, said once more after the verdict: the latency may be the generator's."""
    from quayside.loadtesting.report import saturation_note

    note = saturation_note(report.get("generator"))
    if note is not None:
        out.print(styled(("caveat: ", "yellow"), note))


def _in_cluster(
    target: str,
    *,
    model: str | None,
    model_name: str | None,
    protocol: str,
    rows: int,
    options: Any,
    print_only: bool,
    output: str | None,
    namespace: str,
    image: str | None,
    kubeconfig: str | None,
    refused: dict[str, Any],
) -> None:
    """``--target-kubernetes``: the in-cluster load test's manifests, printed or applied."""
    from quayside.loadtesting.target import split_url
    from quayside.packager.k8s.render import to_yaml

    given = [option for option, value in refused.items() if value is not None]
    if given:
        raise UsageError(
            f"{', '.join(given)} cannot go with --target-kubernetes: the run happens in the cluster, and "
            "its summary is the master Job's log"
        )
    if output not in (None, "yaml"):
        raise UsageError(f"-o/--output takes 'yaml', not '{output}'")
    if not target.startswith(("http://", "https://")):
        raise UsageError(
            "with --target-kubernetes, TARGET is the model server's URL as the cluster resolves it, "
            "e.g. http://NAME.NAMESPACE.svc/v2/models/NAME, and --model names its package"
        )
    if model is None:
        raise UsageError(
            "--target-kubernetes needs --model PACKAGE_OR_URI: the request bodies are generated here, "
            "from its signature, and the in-cluster URL cannot be reached from here"
        )
    host, name = split_url(target)
    inputs = package_inputs(model)
    manifests = in_cluster_manifests(
        host=host, model_name=name or model_name or inputs.name, schema=inputs.schema,
        example=inputs.example, protocol=protocol, rows=rows, options=options, namespace=namespace, image=image,
    )  # fmt: skip
    if print_only:
        out_raw(to_yaml(manifests))
        return
    from quayside.packager.k8s.apply import apply_manifests, connect

    apply_manifests(connect(kubeconfig), manifests, log=err.print)
    job = manifests[2]["metadata"]["name"]
    out.print(
        f"load test {job} started in namespace {namespace}: its summary is the Job's log "
        f"(kubectl logs -f -n {namespace} job/{job})"
    )


def _checked_grpc_target(grpc_target: str | None, *, protocol: str, is_url: bool) -> str | None:
    """``--grpc-target`` as HOST:PORT, refused where it cannot apply."""
    from quayside.loadtesting.target import parse_grpc_target

    if grpc_target is None:
        return None
    if protocol != "grpc":
        raise UsageError(f"--grpc-target goes with --protocol grpc, not --protocol {protocol}")
    if not is_url:
        raise UsageError(
            "--grpc-target goes with a server URL; a model served here gets a gRPC port of its own"
        )
    return parse_grpc_target(grpc_target)


def _policy_objectives(registration: Registration) -> tuple[Any, ...]:
    """The SLO of the model's promotion policy (after checking the version exists), to judge the run here."""
    client, name, version = registration
    client.get_version(name, version)
    policy = client.get_policy(name)
    if policy.slo is None:
        err.print(
            f"note: the promotion policy of '{name}' has no SLO, so the registry keeps this report unjudged; "
            f"set one with: quayside registry policy set {name} --slo 'p95_ms<=25,error_rate<=0.001'"
        )
    return policy.objectives


def _check_registered(registration: Registration, *, inputs: PackageInputs, package: str) -> None:
    """Refuse, before any load, a report that could never be bound to the version it is registered with."""
    client, name, version = registration
    registered = client.get_version(name, version)
    if inputs.digest != registered.digest:
        raise UsageError(
            f"{package} is package {inputs.digest[:12]}, not version {version} of '{name}' "
            f"({registered.digest[:12]}): load-test {registered.uri} to register a report of it"
        )


def _remote(
    url: str, model: str | None, model_name: str | None
) -> tuple[str, str, Any, Any, PackageInputs | None]:
    from quayside.loadtesting.target import fetch_schema, split_url

    base_url, name = split_url(url)
    name = name or model_name
    if model is not None:
        inputs = package_inputs(model)
        return base_url, name or inputs.name, inputs.schema, inputs.example, inputs
    if name is None:
        raise UsageError(
            "name the model: http://HOST:PORT/v2/models/NAME, --model-name NAME or --model PACKAGE"
        )
    return base_url, name, fetch_schema(base_url, name), None, None
