"""The UI's pages over HTTP without a browser: status codes, error pages, paging and sorting, static assets."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from quayside import Metric, save_model
from quayside.config import Settings
from quayside.loadtesting.report import render_html
from quayside.registry.policy import PolicyChange
from quayside.registry.store import RegistryStore
from quayside.server.app import create_app
from quayside.server.deps import app_state
from quayside.server.ui.templating import STATIC_DIR, when
from tests.db.fixtures import QUAYSIDE, clean_env, free_port
from tests.server.ui.seed import SLO, loadtest_report, png

REPO = Path(__file__).resolve().parents[3]
EXTERNAL_URL = re.compile(r"https?://", re.IGNORECASE)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, iris_classifier, iris) -> dict:
    home = tmp_path_factory.mktemp("ui-pages")
    settings = Settings(home=home)
    app = create_app(settings)
    backend = app_state(app).tracking
    experiment = backend.create_experiment("paged")
    runs = []
    for number in range(30):
        run = backend.create_run(experiment.id, f"r{number:02d}", start_time=1_000_000 + number)
        backend.log_batch(run.id, [Metric("score", (number * 7) % 30, 0)], {"lr": str(number % 3)})
        runs.append(run)
    files = home / "files"
    files.mkdir()
    for name, data in {
        "a.txt": b"hello",
        "t.csv": b"x,y\n1,2\n",
        "p.png": png(),
        "m.bin": b"\x00\x01",
    }.items():
        (files / name).write_bytes(data)
        backend.upload_artifact(runs[0].id, files / name, name)
    client = TestClient(app, base_url="http://localhost")
    registry = RegistryStore.from_settings(settings)
    package = home / "package"
    save_model(iris_classifier, package, input_example=iris[0].head(5))
    registry.register_version("paged-model", package, actor="tester", source_run_id=runs[0].id)
    registry.register_version("paged-model", package, actor="tester")
    registry.set_policy("paged-model", PolicyChange(slo=SLO, protected_aliases=["champion"]), actor="tester")
    digest = registry.get_version("paged-model", 1).digest

    def upload(**figures: float):
        document = loadtest_report(digest, **figures)
        return registry.add_loadtest_report("paged-model", 1, document, render_html(document), actor="tester")

    passing, slow = upload(), upload(p95_ms=40.0)
    return {
        "client": client,
        "experiment": experiment.id,
        "runs": runs,
        "registry": registry,
        "passing": passing,
        "slow": slow,
    }


def _element(html: str, tag: str, element_id: str) -> str:
    """The element with ``id`` (up to its first closing tag of the same name), blanks between tags removed."""
    found = re.search(rf'<{tag}[^>]* id="{element_id}"[^>]*>.*?</{tag}>', html, re.S)
    assert found, f"no <{tag} id={element_id!r}>"
    return re.sub(r">\s+<", "><", found.group(0))


def _option(html: str, version: int, stage: str) -> str:
    select = _element(html, "select", f"stage-{version}")
    return re.search(rf'<option value="{stage}"[^>]*>', select).group(0)


def _names(html: str) -> list[str]:
    return re.findall(r'<a href="/runs/[0-9a-f]+">(r\d\d)</a>', html)


def test_runs_are_paged_and_sorted_by_a_metric_in_the_database(site):
    client, experiment = site["client"], site["experiment"]
    first = client.get(f"/experiments/{experiment}", params={"per_page": 25})
    assert first.status_code == 200
    assert "Runs 1–25 of 30" in first.text
    assert _names(first.text)[:2] == ["r29", "r28"]  # newest first by default
    second = client.get(f"/experiments/{experiment}", params={"per_page": 25, "page": 2})
    assert "Runs 26–30 of 30" in second.text
    assert _names(second.text) == ["r04", "r03", "r02", "r01", "r00"]
    by_score = client.get(
        f"/experiments/{experiment}", params={"sort": "metrics.score", "dir": "desc", "per_page": 25}
    )
    scores = [(n * 7) % 30 for n in range(30)]
    best = sorted(range(30), key=lambda n: (-scores[n], -n))[:3]
    assert _names(by_score.text)[:3] == [f"r{n:02d}" for n in best]
    past_the_end = client.get(f"/experiments/{experiment}", params={"per_page": 25, "page": 9})
    assert "Runs 26–30 of 30" in past_the_end.text


def test_a_bad_filter_is_a_400_page_with_the_parse_error_inline(site):
    response = site["client"].get(f"/experiments/{site['experiment']}", params={"filter": "params.lr ="})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert 'id="filter-error"' in response.text
    assert "invalid filter at column 12" in response.text
    assert 'value="params.lr ="' in response.text


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/runs/0123456789abcdef", 404, "no run with id"),
        ("/experiments/999", 404, "no experiment with id 999"),
        ("/models/nobody", 404, "no registered model named"),
        ("/models/paged-model/versions/9", 404, "has no version 9"),
        ("/experiments/1?page=0", 400, "page numbers start at 1"),
        ("/experiments/1?per_page=7", 400, "runs per page must be one of"),
        ("/experiments/abc", 400, "path parameter"),
        ("/experiments/1?sort=bogus", 400, "column &#39;bogus&#39;"),
    ],
)
def test_errors_are_html_pages_with_a_message_not_500s(site, path, status, message):
    response = site["client"].get(path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert message in response.text


def test_an_unknown_page_is_an_html_404_for_browsers_and_json_for_api_clients(site):
    client = site["client"]
    browser = client.get("/no/such/page", headers={"Accept": "text/html,application/xhtml+xml"})
    assert browser.status_code == 404
    assert browser.headers["content-type"].startswith("text/html")
    assert "there is no page at /no/such/page" in browser.text
    program = client.get("/no/such/page", headers={"Accept": "application/json"})
    assert program.status_code == 404 and program.json()["error"]["code"] == "not_found"
    api = client.get("/api/tracking/nothing-here", headers={"Accept": "text/html"})
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"


def test_a_versions_signature_is_a_table_of_names_types_and_shapes(site, iris):
    page = site["client"].get("/models/paged-model/versions/1").text
    inputs = re.search(r'<table id="signature-inputs">.*?</table>', page, re.S).group(0)
    assert "a table of named columns" in inputs
    assert re.findall(r'<th scope="row"><code>([^<]+)</code></th><td>float64</td>', inputs) == list(
        iris[0].columns
    )
    outputs = re.search(r'<table id="signature-outputs">.*?</table>', page, re.S).group(0)
    assert "<code>label</code></th><td>int64</td><td><code>(-1,)</code>" in outputs
    assert "<code>probabilities</code></th><td>float64</td><td><code>(-1, 3)</code>" in outputs


def test_compare_takes_two_to_ten_runs(site):
    runs = site["runs"]
    one = site["client"].get("/compare", params={"run": [runs[0].id]})
    assert one.status_code == 400 and "choose 2 to 10 runs to compare, not 1" in one.text
    eleven = site["client"].get("/compare", params={"run": [r.id for r in runs[:11]]})
    assert eleven.status_code == 400
    two = site["client"].get("/compare", params={"run": [runs[0].id, runs[1].id]})
    assert two.status_code == 200
    assert re.search(r'<tr class="diff"><th scope="row">lr', two.text)


def test_artifacts_preview_by_kind_and_images_come_with_their_own_type(site):
    client, run_id = site["client"], site["runs"][0].id
    text = client.get(f"/runs/{run_id}/artifacts/view", params={"path": "a.txt"})
    assert text.status_code == 200 and ">hello</pre>" in text.text
    table = client.get(f"/runs/{run_id}/artifacts/view", params={"path": "t.csv"})
    assert '<th scope="col">x</th>' in table.text
    image = client.get(f"/runs/{run_id}/artifacts/image", params={"path": "p.png"})
    assert image.headers["content-type"] == "image/png"
    assert image.headers["x-content-type-options"] == "nosniff"
    assert client.get(f"/runs/{run_id}/artifacts/image", params={"path": "a.txt"}).status_code == 400
    binary = client.get(f"/runs/{run_id}/artifacts/view", params={"path": "m.bin"})
    assert "No preview for this kind of file" in binary.text
    escape = client.get(f"/runs/{run_id}/artifacts/view", params={"path": "../../quayside.db"})
    assert escape.status_code == 400


def test_the_load_test_api_lists_and_reads_a_versions_reports(site):
    client, passing, slow = site["client"], site["passing"].id, site["slow"].id
    listed = client.get("/api/registry/models/paged-model/versions/1/loadtests").json()["reports"]
    assert sorted((r["id"], r["passed"]) for r in listed) == sorted([(passing, True), (slow, False)])
    report = client.get(f"/api/registry/models/paged-model/versions/1/loadtests/{passing}").json()
    assert len(report["timeseries"]) == 10
    html = client.get(f"/api/registry/models/paged-model/versions/1/loadtests/{passing}/html")
    assert html.headers["content-type"].startswith("text/html")
    assert "<svg" in html.text and "Load test of" in html.text
    no_html = client.get("/api/registry/models/paged-model/versions/1/loadtests/nope/html")
    assert (
        no_html.status_code == 404 and "has no load-test report 'nope'" in no_html.json()["error"]["message"]
    )
    missing = client.get("/api/registry/models/paged-model/versions/1/loadtests/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_a_versions_reports_show_the_registrys_verdict_against_the_policy_in_force(site):
    page = site["client"].get("/models/paged-model/versions/1").text
    passing = _element(page, "tr", f"report-{site['passing'].id}")
    assert '<td class="verdict"><span class="pass">met</span>' in passing
    assert '<td class="qualifies wrap"><span class="pass">yes</span>' in passing
    assert '<td class="tested">package</td><td class="num">4</td><td class="num">10</td>' in passing
    assert f"<td>{when(site['passing'].started_at)}</td>" in passing  # milliseconds, not seconds
    assert when(site["passing"].started_at)[:4] == when(time.time() * 1000)[:4]
    slow = _element(page, "tr", f"report-{site['slow'].id}")
    assert '<span class="fail">missed</span>' in slow
    assert "<li>missed p95_ms&lt;=25 (measured 40)</li>" in slow
    in_force = _element(page, "p", "policy-in-force")
    assert '<a href="/models/paged-model#policy">' in in_force
    assert "<strong>production</strong> or taking <code>@champion</code>" in in_force
    assert "newer than 7 days against p95_ms&lt;=25,error_rate&lt;=0.001,rps&gt;=50" in in_force


def test_a_version_with_a_passing_report_may_enter_production(site):
    page = site["client"].get("/models/paged-model/versions/1").text
    assert "disabled" not in _option(page, 1, "production")
    assert 'id="refusal-1-production"' not in page and 'id="alias-refusals"' not in page


def test_a_version_without_one_has_production_and_the_protected_alias_closed_with_the_reason(site):
    page = site["client"].get("/models/paged-model/versions/2").text
    assert _option(page, 2, "production") == '<option value="production" disabled data-refused="true">'
    select = re.search(r'<select id="stage-2"[^>]*>', page).group(0)
    assert 'aria-describedby="refusal-2-production"' in select
    reason = _element(page, "p", "refusal-2-production")
    assert "version 2 of &#39;paged-model&#39; has no passing load test newer than 7 days" in reason
    assert "<code>quayside promote paged-model 2</code>" in reason
    aliases = _element(page, "ul", "alias-refusals")
    assert (
        "<code>@champion</code>" in aliases
        and "cannot take the protected alias &#39;champion&#39;" in aliases
    )
    assert "<code>quayside promote paged-model 2 --alias champion</code>" in aliases
    assert 'id="override-2"' in page  # without auth the caller is the local admin
    assert "No load-test reports." in page


def test_the_model_page_shows_the_policy_a_form_to_change_it_and_marks_the_protected_alias(site):
    page = site["client"].get("/models/paged-model").text
    facts = _element(page, "dl", "policy-facts")
    assert '<code id="policy-slo">p95_ms&lt;=25,error_rate&lt;=0.001,rps&gt;=50</code>' in facts
    assert "<dd>7 days</dd>" in facts and "<code>@champion</code>" in facts
    assert "<dd>1 user for 10 s</dd>" in facts and "by tester" in facts
    form = re.search(r'<form class="policy".*?</form>', page, re.S).group(0)
    assert 'name="protected_stages" value="production" checked' in form
    assert 'name="protected_stages" value="staging">' in form
    assert 'value="champion"' in form and 'value="7"' in form
    assert 'value="p95_ms&lt;=25,error_rate&lt;=0.001,rps&gt;=50"' in form
    assert '<option value="champion" label="champion (protected)">' in page
    assert "disabled" not in _option(page, 1, "production")
    assert 'data-refused="true"' in _option(page, 2, "production")
    assert "quayside promote paged-model 2" in _element(page, "p", "refusal-2-production")


def test_a_policy_changed_elsewhere_changes_the_verdicts_shown(site):
    registry = site["registry"]
    registry.set_policy("paged-model", PolicyChange(slo="p95_ms<=50"), actor="tester")
    try:
        page = site["client"].get("/models/paged-model/versions/1").text
        assert '<span class="pass">met</span>' in _element(page, "tr", f"report-{site['slow'].id}")
        registry.set_policy("paged-model", PolicyChange(slo=""), actor="tester")
        page = site["client"].get("/models/paged-model/versions/1").text
        assert "the policy has no SLO to judge it against" in _element(
            page, "tr", f"report-{site['passing'].id}"
        )
        assert "disabled" in _option(page, 1, "production")
    finally:
        registry.set_policy("paged-model", PolicyChange(slo=SLO), actor="tester")


def build_document(digest: str, *, smoke: str = "passed", size_bytes: int = 187_300_000) -> dict:
    """What ``quayside build`` sends the registry after building an image of a version."""
    timed = smoke == "passed"
    return {
        "package_digest": digest,
        "tag": "127.0.0.1:5000/paged-model:1",
        "image_id": "sha256:" + "ab" * 32,
        "size_bytes": size_bytes,
        "base_image": "quayside/python:3.11-bookworm",
        "quayside_version": "0.1.0",
        "repo_digest": "127.0.0.1:5000/paged-model@sha256:" + "cd" * 32 if timed else None,
        "smoke": {
            "status": smoke,
            "cold_start_s": 1.25 if timed else None,
            "first_inference_ms": 3.5 if timed else None,
            "detail": "answered as the golden outputs say"
            if timed
            else "smoke test failed: the container exited",
        },
        "budget": None,
        "built_at": int(time.time() * 1000),
    }


def test_a_versions_builds_show_their_figures_smoke_result_and_the_budget_in_force(site):
    registry = site["registry"]
    digest = registry.get_version("paged-model", 1).digest
    failed = registry.add_build_record(
        "paged-model", 1, build_document(digest, smoke="failed"), actor="tester"
    )
    passed = registry.add_build_record("paged-model", 1, build_document(digest), actor="tester")
    page = site["client"].get("/models/paged-model/versions/1").text
    row = _element(page, "tr", f"build-{passed.id}")
    assert '<code class="wrap"' in row and "127.0.0.1:5000/paged-model@sha256:" in row
    assert '<td class="num">187.3</td><td class="num">1.25</td><td class="num">3.5</td>' in row
    assert '<span class="pass">passed</span>' in row and '<span class="pass">yes</span>' in row
    assert "the container exited" in _element(page, "tr", f"build-{failed.id}")
    registry.set_policy("paged-model", PolicyChange(budget="image_mb<=100"), actor="tester")
    try:
        page = site["client"].get("/models/paged-model/versions/1").text
        assert "missed image_mb&lt;=100 (measured 187.3)" in _element(page, "tr", f"build-{passed.id}")
        facts = _element(site["client"].get("/models/paged-model").text, "dl", "policy-facts")
        assert '<code id="policy-budget">image_mb&lt;=100</code>' in facts
    finally:
        registry.set_policy("paged-model", PolicyChange(budget=""), actor="tester")
    assert "No builds recorded." in site["client"].get("/models/paged-model/versions/2").text


def test_static_assets_are_served_with_their_types(site):
    client = site["client"]
    assert client.get("/static/quayside.css").headers["content-type"].startswith("text/css")
    assert client.get("/static/charts.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/static/ui.js").status_code == 200
    assert client.get("/static/../app.py").status_code == 404


def test_no_page_or_asset_refers_to_anything_outside_the_server(site):
    client, run_id, experiment = site["client"], site["runs"][0].id, site["experiment"]
    paths = [
        "/",
        f"/experiments/{experiment}",
        f"/runs/{run_id}",
        f"/runs/{run_id}/artifacts/view?path=a.txt",
        f"/compare?run={run_id}&run={site['runs'][1].id}",
        "/models",
        "/models/paged-model",
        "/models/paged-model/versions/1",
        "/runs/nope",
    ]
    paths += [f"/static/{f.name}" for f in STATIC_DIR.iterdir() if f.is_file()]
    for path in paths:
        body = client.get(path).text
        assert not EXTERNAL_URL.search(body), f"{path} refers to {EXTERNAL_URL.search(body).group()}..."


def test_the_wheel_ships_the_templates_and_static_files_and_an_install_serves_them(tmp_path: Path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("quayside-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    ui = REPO / "src" / "quayside" / "server" / "ui"
    for folder in ("templates", "static"):
        for file in (ui / folder).iterdir():
            assert f"quayside/server/ui/{folder}/{file.name}" in names
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    probe = (
        "import quayside, sys; from fastapi.testclient import TestClient; "
        "from quayside.config import Settings; from quayside.server.app import create_app; "
        f"assert quayside.__file__.startswith({str(target)!r}), quayside.__file__; "
        f"c = TestClient(create_app(Settings(home={str(tmp_path / 'home')!r})), base_url='http://localhost'); "
        "assert c.get('/static/charts.js').status_code == 200; assert 'Experiments' in c.get('/').text"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_quayside_ui_serves_the_pages_and_the_rest_api_on_one_port(tmp_path: Path):
    port = free_port()
    env = clean_env(QUAYSIDE_HOME=str(tmp_path))
    process = subprocess.Popen([QUAYSIDE, "ui", "--port", str(port)], env=env, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                page = httpx.get(url + "/", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, "quayside ui did not start"
                time.sleep(0.05)  # polling for the port to open
        assert page.status_code == 200 and "<h1>Experiments</h1>" in page.text
        assert httpx.get(url + "/api/tracking/experiments").json() == {"experiments": []}
    finally:
        process.terminate()
        process.wait(timeout=30)
