"""The web UI in a real browser: Debian's Chromium driven by Playwright against a real `quayside server`.

Every test leaves screenshots in test-output/ui/ so a reviewer can look at each page.
"""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import expect

from tests.server.ui.conftest import UI, Page
from tests.server.ui.seed import EXPERIMENT, GATED, MODEL, PROTECTED_ALIAS, SLO_MODEL, upload_report


def _run_names(tab: Page) -> list[str]:
    return tab.page.locator("#runs-table tbody th[scope=row] a").all_inner_texts()


def test_the_runs_table_filters_sorts_and_shows_a_bad_filter_inline(ui: UI, page: Page):
    p = page.page
    p.goto(ui.url + "/")
    row = p.locator("tr", has=p.get_by_role("link", name=EXPERIMENT))
    expect(row.locator("td").first).to_have_text("3")
    page.shot("experiments")
    p.get_by_role("link", name=EXPERIMENT).click()
    expect(p.locator("#runs-count")).to_have_text("Runs 1–3 of 3")
    assert sorted(_run_names(page)) == ["gbm", "rf-deep", "rf-shallow"]

    p.get_by_label("Filter").fill("params.model = 'rf' and metrics.accuracy > 0.82")
    p.get_by_label("Filter").press("Enter")
    expect(p.locator("#runs-count")).to_have_text("Runs 1–1 of 1")
    assert _run_names(page) == ["rf-deep"]
    page.shot("filtered")

    p.get_by_label("Filter").fill("params.model = 'rf'")
    p.get_by_role("button", name="Apply").click()
    p.get_by_role("link", name="accuracy").click()  # sorted in the database, descending first
    expect(p.locator("th[aria-sort=descending]")).to_contain_text("accuracy")
    assert _run_names(page) == ["rf-deep", "rf-shallow"]
    p.get_by_role("link", name="accuracy").click()
    expect(p.locator("th[aria-sort=ascending]")).to_contain_text("accuracy")
    assert _run_names(page) == ["rf-shallow", "rf-deep"]
    page.shot("sorted")

    p.get_by_label("Filter").fill("metrics.accuracy >> 0.5")
    p.get_by_label("Filter").press("Enter")
    error = p.locator("#filter-error")
    expect(error).to_contain_text("invalid filter at column 19: expected a quoted string or a number")
    expect(p.get_by_label("Filter")).to_have_attribute("aria-invalid", "true")
    expect(p.get_by_label("Filter")).to_have_value("metrics.accuracy >> 0.5")
    page.shot("bad-filter")


def test_a_run_page_draws_every_metric_and_previews_artifacts(ui: UI, page: Page):
    p = page.page
    p.goto(f"{ui.url}/experiments/{ui.data.experiment_id}")
    p.get_by_role("link", name="rf-shallow").click()
    expect(p.get_by_role("heading", level=1)).to_contain_text("rf-shallow")
    loss = p.locator('figure[data-metric="loss"] path.series')
    expect(loss).to_have_count(1)
    expect(loss).to_have_attribute("data-points", "20")
    assert len(loss.get_attribute("d").split("L")) == 20  # one segment per logged step
    expect(p.locator('figure[data-metric="accuracy"] path.series')).to_have_attribute("data-points", "1")
    page.shot("run")

    p.get_by_label("Time").check()
    expect(p.locator('figure[data-metric="loss"] .axis-label')).to_have_text("time (UTC)")

    versions = p.locator("#run-versions tbody tr")
    expect(versions).to_have_count(4)  # two of MODEL, one each of GATED and SLO_MODEL
    expect(versions.filter(has_text=f"{MODEL} v")).to_have_count(2)
    expect(versions.filter(has_text=f"{MODEL} v").first).to_contain_text(f"{MODEL} v1")

    p.get_by_role("link", name="reports/").click()
    expect(p.locator("#artifacts-table")).to_contain_text("reports/sample.csv")
    p.locator("tr", has_text="sample.csv").get_by_role("link", name="Preview").click()
    expect(p.locator("#csv-preview thead th").first).to_have_text("feature")
    expect(p.locator("#csv-preview tbody tr")).to_have_count(2)
    page.shot("csv-preview")
    p.go_back()
    p.locator("tr", has_text="plot.png").get_by_role("link", name="Preview").click()
    image = p.locator("img.preview")
    expect(image).to_be_visible()
    assert image.evaluate("img => img.complete && img.naturalWidth") == 16
    p.goto(f"{ui.url}/runs/{ui.run_id('rf-shallow')}")
    p.locator("tr", has_text="summary.json").get_by_role("link", name="Preview").click()
    expect(p.locator("#text-preview")).to_contain_text('"classes": [')
    download = p.get_by_role("link", name="Download")
    assert httpx.get(ui.url + download.get_attribute("href")).json()["accuracy"] == 0.81


def test_two_runs_compare_with_differences_marked_and_metrics_overlaid(ui: UI, page: Page):
    p = page.page
    p.goto(f"{ui.url}/experiments/{ui.data.experiment_id}")
    p.get_by_label("Select rf-shallow").check()
    p.get_by_label("Select gbm").check()
    p.get_by_role("button", name="Compare selected").click()
    expect(p.get_by_role("heading", level=1)).to_have_text("Compare 2 runs")
    model_row = p.locator("#compare-params tbody tr", has=p.locator("th", has_text="model"))
    expect(model_row).to_have_class("diff")
    expect(model_row).to_contain_text("differs")
    depth_row = p.locator("#compare-params tbody tr", has=p.locator("th", has_text="max_depth"))
    expect(depth_row).not_to_have_class("diff")
    lines = p.locator('figure[data-metric="loss"] path.series')
    expect(lines).to_have_count(2)
    assert {lines.nth(i).get_attribute("data-series") for i in range(2)} == {"rf-shallow", "gbm"}
    expect(p.locator('figure[data-metric="loss"] ul.legend li')).to_have_count(2)
    page.shot("compare")


def test_a_version_moves_to_staging_through_the_confirm_dialog_and_the_history_shows_it(ui: UI, page: Page):
    p = page.page
    p.goto(f"{ui.url}/models")
    p.get_by_role("link", name=MODEL).click()
    row = p.locator("#version-1")
    expect(row).to_contain_text("candidate")
    row.get_by_label("Move v1 to").select_option("staging")
    row.get_by_role("button", name="Move…").click()
    dialog = p.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"Move {MODEL} v1 from candidate to staging?")
    p.get_by_label("Reason (kept in the audit log)").fill("offline eval ok")
    page.shot("confirm")
    p.get_by_role("button", name="Confirm").click()

    expect(p.locator("#version-1 .stage")).to_have_text("staging")
    newest = p.locator("#history tbody tr").first
    expect(newest).to_contain_text("transition")
    expect(newest).to_contain_text("candidate")
    expect(newest).to_contain_text("offline eval ok")
    page.shot("staged")
    assert httpx.get(f"{ui.url}/api/registry/models/{MODEL}/versions/1").json()["stage"] == "staging"


def _confirm(tab: Page, reason: str) -> None:
    tab.page.get_by_label("Reason (kept in the audit log)").fill(reason)
    tab.page.get_by_role("button", name="Confirm").click()


def test_production_is_refused_without_a_passing_load_test_and_open_with_one(ui: UI, page: Page):
    p = page.page
    before, entries = ui.registry.get_version(GATED, 1), len(ui.registry.history(GATED))
    p.goto(f"{ui.url}/models/{GATED}/versions/1")
    select = p.get_by_label("Move v1 to")
    production = select.locator('option[value="production"]')
    expect(production).to_be_disabled()
    expect(select.locator('option[value="archived"]')).to_be_enabled()
    reason = p.locator("#refusal-1-production")
    expect(reason).to_be_visible()
    expect(reason).to_contain_text(f"version 1 of '{GATED}' has no passing load test newer than 7 days")
    expect(reason.locator("code")).to_have_text(f"quayside promote {GATED} 1")
    expect(select).to_have_accessible_description(re.compile("has no passing load test"))
    page.shot("production-closed")

    # The page only says no; the registry is what refuses. Force the option open and send the move.
    select.evaluate(
        "s => { s.querySelector('option[value=production]').disabled = false; s.value = 'production'; }"
    )
    p.get_by_role("button", name="Move…").click()
    expect(p.locator("#confirm-dialog")).to_contain_text(f"Move {GATED} v1 from staging to production?")
    with p.expect_response(lambda r: r.url.endswith("/versions/1/transition")) as answer:
        _confirm(page, "no load test")
    assert answer.value.status == 409
    error = p.locator("#confirm-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text(f"version 1 of '{GATED}' has no passing load test")
    expect(error).to_contain_text(f"run quayside promote {GATED} 1")
    page.shot("production-refused")
    p.get_by_role("button", name="Cancel").click()
    expect(p.locator("#confirm-dialog")).to_be_hidden()
    expect(p.locator("h1 .stage")).to_have_text("staging")
    after = ui.registry.get_version(GATED, 1)
    assert (after.stage, after.aliases) == (before.stage, before.aliases) == ("staging", ())
    assert len(ui.registry.history(GATED)) == entries
    assert httpx.get(f"{ui.url}/api/registry/models/{GATED}/versions/1").json()["stage"] == "staging"

    report = upload_report(ui.registry, GATED, 1)
    p.reload()
    expect(p.locator(f"#report-{report.id} .verdict")).to_have_text("met")
    expect(production).to_be_enabled()
    expect(p.locator("#refusal-1-production")).to_have_count(0)
    select.select_option("production")
    p.get_by_role("button", name="Move…").click()
    _confirm(page, "load test passed")
    expect(p.locator("h1 .stage")).to_have_text("production")
    page.shot("production-open")
    assert ui.registry.get_version(GATED, 1).stage == "production"
    newest = ui.registry.history(GATED)[-1]
    assert (newest.to_value, newest.override) == ("production", False)
    assert newest.evidence["loadtest_report"] == report.id


def test_a_refused_move_shows_the_apis_message_and_changes_nothing(ui: UI, page: Page):
    p = page.page
    p.goto(f"{ui.url}/models/{MODEL}")
    row = p.locator("#version-2")
    row.get_by_label("Move v2 to").select_option("archived")
    row.get_by_role("button", name="Move…").click()
    _confirm(page, "x" * 3000)  # longer than a reason may be
    error = p.locator("#confirm-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("reason")
    page.shot("refused")
    p.get_by_role("button", name="Cancel").click()
    expect(p.locator("#confirm-dialog")).to_be_hidden()
    assert httpx.get(f"{ui.url}/api/registry/models/{MODEL}/versions/2").json()["stage"] == "candidate"


def test_a_protected_alias_is_marked_refused_without_a_load_test_and_moved_by_an_admins_override(
    ui: UI, page: Page
):
    p = page.page
    p.goto(f"{ui.url}/models/{MODEL}")
    expect(p.locator("#alias-protected")).to_contain_text(f"@{PROTECTED_ALIAS}")
    expect(p.get_by_label("Alias", exact=True)).to_have_accessible_description(re.compile("Protected"))
    p.get_by_label("Alias", exact=True).fill(PROTECTED_ALIAS)
    p.get_by_label("points to").select_option("2")
    p.get_by_role("button", name="Move alias…").click()
    _confirm(page, "try it")
    expect(p.locator("#confirm-error")).to_contain_text(
        f"version 2 of '{MODEL}' has no passing load test newer than 7 days"
    )
    p.get_by_role("button", name="Cancel").click()
    assert PROTECTED_ALIAS not in ui.registry.get_model(MODEL).aliases

    p.locator("#alias-override").check()
    p.get_by_role("button", name="Move alias…").click()
    expect(p.locator("#confirm-text")).to_contain_text("overrides the promotion policy")
    expect(p.get_by_label("Reason (kept in the audit log)")).to_have_attribute("required", "")
    _confirm(page, "hotfix, measured by hand")
    expect(p.locator("#version-2")).to_contain_text(f"@{PROTECTED_ALIAS}")
    newest = p.locator("#history tbody tr").first
    expect(newest).to_contain_text("alias_set")
    expect(newest).to_contain_text("override=True")
    page.shot("alias-override")
    assert ui.registry.get_model(MODEL).aliases[PROTECTED_ALIAS] == 2
    assert ui.registry.history(MODEL)[-1].override


def test_an_alias_moves_from_the_page(ui: UI, page: Page):
    p = page.page
    p.goto(f"{ui.url}/models/{MODEL}")
    p.get_by_label("Alias", exact=True).fill("shadow")
    p.get_by_label("points to").select_option("2")
    p.get_by_role("button", name="Move alias…").click()
    p.get_by_role("button", name="Confirm").click()
    expect(p.locator("#version-2")).to_contain_text("@shadow")
    expect(p.locator("#history tbody tr").first).to_contain_text("alias_set")
    page.shot("alias")


def test_changing_the_slo_on_the_model_page_changes_the_verdict_on_the_version_page(ui: UI, page: Page):
    p = page.page
    p.goto(f"{ui.url}/models/{SLO_MODEL}/versions/1")
    row = p.locator("#loadtests-table tbody tr").first
    expect(row.locator(".verdict")).to_have_text("met")
    expect(row.locator(".qualifies")).to_have_text("yes")
    expect(p.get_by_label("Move v1 to").locator('option[value="production"]')).to_be_enabled()
    p.locator("#policy-in-force").get_by_role("link", name="promotion policy").click()
    p.wait_for_url(f"{ui.url}/models/{SLO_MODEL}#policy")  # and for its scripts, before using the form
    expect(p.locator("#policy-slo")).to_have_text("p95_ms<=25,error_rate<=0.001,rps>=50")

    p.get_by_label("SLO", exact=True).fill("p95<=1")
    p.get_by_role("button", name="Change policy…").click()
    _confirm(page, "typo")
    expect(p.locator("#confirm-error")).to_contain_text("names unknown metric 'p95'")
    p.get_by_role("button", name="Cancel").click()
    assert ui.registry.get_policy(SLO_MODEL).slo == "p95_ms<=25,error_rate<=0.001,rps>=50"

    p.get_by_label("SLO", exact=True).fill("p95_ms<=1")
    p.get_by_role("button", name="Change policy…").click()
    _confirm(page, "tighter latency budget")
    expect(p.locator("#policy-slo")).to_have_text("p95_ms<=1")
    expect(p.locator("#history tbody tr").first).to_contain_text("policy_set")
    page.shot("policy-changed")
    assert ui.registry.get_policy(SLO_MODEL).slo == "p95_ms<=1"

    p.goto(f"{ui.url}/models/{SLO_MODEL}/versions/1")
    expect(row.locator(".verdict")).to_have_text("missed")
    expect(row.locator(".qualifies")).to_contain_text("missed p95_ms<=1 (measured 5.5)")
    expect(p.get_by_label("Move v1 to").locator('option[value="production"]')).to_be_disabled()
    expect(p.locator("#refusal-1-production")).to_contain_text("against p95_ms<=1")
    verdict = p.locator("#loadtest-verdict tbody tr")
    expect(verdict).to_have_count(1)
    expect(verdict.first).to_contain_text("missed")
    page.shot("verdict-changed")


def test_a_versions_page_links_its_run_and_draws_its_load_test(ui: UI, page: Page):
    p = page.page
    p.goto(f"{ui.url}/models/{MODEL}/versions/1")
    expect(p.locator("#loadtests-table tbody tr")).to_have_count(1)
    latency = p.locator("#latency-chart path.series")
    expect(latency).to_have_count(3)
    expect(latency.first).to_have_attribute("data-points", "10")
    expect(p.locator("#throughput-chart path.series")).to_have_count(1)
    verdict = p.locator("#loadtest-verdict tbody tr")
    expect(verdict).to_have_count(3)
    expect(verdict.first).to_contain_text("p95_ms<=25")
    expect(verdict.first.locator("td").first).to_have_text("5.5")
    expect(verdict.first).to_contain_text("met")
    expect(p.locator("#signature-inputs tbody tr")).to_have_count(4)
    page.shot("version")
    full = p.locator("#loadtests-table").get_by_role("link", name="HTML")
    html = httpx.get(ui.url + full.get_attribute("href"))
    assert html.headers["content-type"].startswith("text/html") and "Load test of" in html.text
    row = p.locator(f"#report-{ui.data.report_id}")
    expect(row.locator(".verdict")).to_have_text("met")
    expect(row.locator(".tested")).to_have_text("package")
    p.locator("#lineage").click()
    expect(p.get_by_role("heading", level=1)).to_contain_text("rf-shallow")


def test_controls_are_reachable_from_the_keyboard(ui: UI, page: Page):
    p = page.page
    p.goto(f"{ui.url}/experiments/{ui.data.experiment_id}")
    reached = set()
    for _ in range(40):
        p.keyboard.press("Tab")
        reached.add(p.evaluate("document.activeElement.id || document.activeElement.textContent.trim()"))
    assert {"filter", "compare-button", "Skip to content", "Experiments", "Models"} <= reached
    p.keyboard.press("Shift+Tab")
    assert p.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    page.shot("focus")


def test_pages_fit_a_phone_width_screen(ui: UI, phone: Page):
    p = phone.page
    pages = {
        "experiments": "/",
        "runs": f"/experiments/{ui.data.experiment_id}",
        "run": f"/runs/{ui.run_id('rf-shallow')}",
        "compare": f"/compare?run={ui.run_id('rf-shallow')}&run={ui.run_id('rf-deep')}",
        "model": f"/models/{MODEL}",
        "version": f"/models/{MODEL}/versions/1",
    }
    for name, path in pages.items():
        p.goto(ui.url + path)
        overflow = p.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{name} page is {overflow}px wider than a 390px screen"
        phone.shot(name)
    p.goto(f"{ui.url}/experiments/{ui.data.experiment_id}")
    table_box = p.locator(".table-scroll").first
    assert table_box.evaluate("el => el.scrollWidth > el.clientWidth")  # the table scrolls inside its box


def test_a_link_printed_by_the_mlflow_client_opens_the_run_with_its_mlflow_model_and_dataset(
    ui: UI, page: Page
):
    p = page.page
    mlflow = ui.mlflow
    p.goto(f"{ui.url}/#/experiments/{mlflow.experiment_id}/runs/{mlflow.run_id}")
    expect(p.get_by_role("heading", level=1)).to_contain_text("from-mlflow")
    assert p.url == f"{ui.url}/runs/{mlflow.run_id}"
    models = p.locator("#run-mlflow-models tbody tr")
    expect(models).to_have_count(1)
    expect(models.first).to_contain_text(mlflow.model_id)
    expect(models.first).to_contain_text("ready")
    expect(models.first).to_contain_text(f"quayside import mlflow runs:/{mlflow.run_id}/model")
    datasets = p.locator("#run-datasets tbody tr")
    expect(datasets).to_have_count(1)
    expect(datasets.first).to_contain_text("iris")
    expect(datasets.first).to_contain_text("training")
    page.shot("mlflow-run")
    models.first.get_by_role("link", name="model").click()
    expect(p.locator("#artifacts-table")).to_contain_text("model/MLmodel")
    p.goto(f"{ui.url}/#/experiments/{mlflow.experiment_id}")
    expect(p.get_by_role("heading", level=1)).to_have_text("ui-mlflow")
