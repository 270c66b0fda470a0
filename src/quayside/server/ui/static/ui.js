/* Quayside web UI: registry actions (stage and alias moves, the promotion policy) through the REST API,
   with a confirm dialog, and load-test charts.
   Every change goes through the same endpoints the CLI and Python client use; a refused change shows the
   API's {"error": {"code", "message"}} message in the dialog and changes nothing on the page. */
(function () {
  "use strict";

  /* With a login session, every change carries the session's CSRF token (the server refuses it otherwise). */
  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : null;
  }

  function send(method, url, payload) {
    var init = { method: method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    var token = csrfToken();
    if (token && method !== "GET") { init.headers["X-CSRF-Token"] = token; }
    if (payload !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(payload);
    }
    return fetch(url, init).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (body) {
        if (!response.ok) {
          var message = body && body.error ? body.error.message : "the server answered " + response.status;
          throw new Error(message);
        }
        return body;
      });
    });
  }

  function modelUrl(model) { return "/api/registry/models/" + encodeURIComponent(model); }

  var pending = null;

  /* `reasonRequired`: an override of the promotion policy needs a reason (the server refuses one without). */
  function confirmAction(title, text, action, reasonRequired) {
    var dialog = document.getElementById("confirm-dialog");
    document.getElementById("confirm-title").textContent = title;
    document.getElementById("confirm-text").textContent = text;
    var reason = document.getElementById("confirm-reason");
    reason.value = "";
    reason.required = Boolean(reasonRequired);
    var error = document.getElementById("confirm-error");
    error.hidden = true;
    error.textContent = "";
    pending = action;
    dialog.showModal();
    reason.focus();
  }

  function setUpDialog() {
    var dialog = document.getElementById("confirm-dialog");
    if (!dialog) { return; }
    var ok = document.getElementById("confirm-ok");
    document.getElementById("confirm-cancel").addEventListener("click", function () { dialog.close(); });
    document.getElementById("confirm-form").addEventListener("submit", function (event) {
      event.preventDefault();
      if (!pending) { return; }
      var error = document.getElementById("confirm-error");
      ok.disabled = true;
      pending(document.getElementById("confirm-reason").value).then(function () {
        pending = null;
        dialog.close();
        window.location.reload();
      }).catch(function (e) {
        error.textContent = e.message;
        error.hidden = false;
      }).then(function () { ok.disabled = false; });
    });
  }

  var OVERRIDE_NOTE = " This overrides the promotion policy; the audit log marks it and names you.";

  /* A stage the policy closes to the version is a disabled option (data-refused); ticking "override"
     (admins only) opens it, unticking closes it again. */
  function setUpOverride(form) {
    var override = form.elements.override, select = form.elements.stage;
    if (!override) { return; }
    override.addEventListener("change", function () {
      form.querySelectorAll("option[data-refused]").forEach(function (option) { option.disabled = !override.checked; });
      if (select.selectedOptions.length && select.selectedOptions[0].disabled) {
        var open = select.querySelector("option:not(:disabled)");
        if (open) { select.value = open.value; }
      }
    });
  }

  function setUpTransitions() {
    document.querySelectorAll("form.transition").forEach(function (form) {
      setUpOverride(form);
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var model = form.dataset.model, version = form.dataset.version, target = form.elements.stage.value;
        var override = Boolean(form.elements.override && form.elements.override.checked);
        var payload = { stage: target };
        if (override) { payload.override = true; }
        confirmAction(
          "Change stage",
          "Move " + model + " v" + version + " from " + form.dataset.stage + " to " + target + "?" + (override ? OVERRIDE_NOTE : ""),
          function (reason) {
            payload.reason = reason;
            return send("POST", modelUrl(model) + "/versions/" + version + "/transition", payload);
          },
          override
        );
      });
    });
  }

  function setUpAliases() {
    document.querySelectorAll("form.alias").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var model = form.dataset.model, alias = form.elements.alias.value.trim(), version = Number(form.elements.version.value);
        var override = Boolean(form.elements.override && form.elements.override.checked);
        var payload = { version: version };
        if (override) { payload.override = true; }
        confirmAction(
          "Move alias",
          "Point " + model + "@" + alias + " at v" + version + "?" + (override ? OVERRIDE_NOTE : ""),
          function (reason) {
            payload.reason = reason;
            return send("PUT", modelUrl(model) + "/aliases/" + encodeURIComponent(alias), payload);
          },
          override
        );
      });
    });
  }

  /* The whole policy is sent (PATCH takes any subset); the server checks every field and answers with
     the message of the first it refuses. The age is asked in days and kept in seconds. */
  function policyPayload(form) {
    var stages = [];
    form.querySelectorAll('input[name="protected_stages"]').forEach(function (box) {
      if (box.checked) { stages.push(box.value); }
    });
    var aliases = form.elements.protected_aliases.value.split(",").map(function (a) { return a.trim(); })
      .filter(function (a) { return a !== ""; });
    return {
      protected_stages: stages,
      protected_aliases: aliases,
      slo: form.elements.slo.value.trim(),
      max_report_age_s: Math.round(Number(form.elements.max_report_age_days.value) * 86400),
      min_users: Number(form.elements.min_users.value),
      min_duration_s: Number(form.elements.min_duration_s.value),
      require_image: form.elements.require_image.checked,
      budget: form.elements.budget.value.trim(),
      require_build: form.elements.require_build.checked
    };
  }

  function setUpPolicy() {
    document.querySelectorAll("form.policy").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var model = form.dataset.model, payload = policyPayload(form);
        confirmAction(
          "Change the promotion policy",
          "Change the promotion policy of " + model + "? Every version's reports are judged by the new one at once.",
          function (reason) {
            payload.reason = reason;
            return send("PATCH", modelUrl(model) + "/policy", payload);
          }
        );
      });
    });
  }

  function cell(tag, text, className) {
    var element = document.createElement(tag);
    element.textContent = text;
    if (className) { element.className = className; }
    return element;
  }

  /* One row per SLO objective of the report; a report run without an SLO says so. */
  function showVerdict(table, verdict) {
    var body = table.querySelector("tbody");
    body.replaceChildren();
    var objectives = verdict && verdict.objectives ? verdict.objectives : [];
    if (!objectives.length) {
      var row = body.insertRow(), note = cell("td", "The promotion policy has no SLO to judge this report against.");
      note.colSpan = 3;
      row.appendChild(note);
      return;
    }
    objectives.forEach(function (o) {
      var row = body.insertRow(), head = cell("th", o.objective);
      head.scope = "row";
      row.appendChild(head);
      row.appendChild(cell("td", String(o.measured), "num"));
      row.appendChild(o.passed ? cell("td", "met", "pass") : cell("td", "missed", "fail"));
    });
  }

  function showReport(box, reportId) {
    var url = modelUrl(box.dataset.model) + "/versions/" + box.dataset.version + "/loadtests/" + encodeURIComponent(reportId);
    var error = document.getElementById("loadtest-error");
    send("GET", url).then(function (report) {
      error.hidden = true;
      document.getElementById("loadtest-title").textContent = "Report " + report.id;
      var series = report.timeseries || [];
      var latency = ["p50_ms", "p95_ms", "p99_ms"].map(function (key) {
        return { label: key.replace("_ms", ""), points: series.map(function (p) { return [p.t, p[key]]; }) };
      });
      window.QuaysideCharts.draw(box.querySelector("#latency-chart .plot"), latency, { xLabel: "seconds", legend: true });
      var rps = [{ label: "requests/s", points: series.map(function (p) { return [p.t, p.rps]; }) }];
      window.QuaysideCharts.draw(box.querySelector("#throughput-chart .plot"), rps, { xLabel: "seconds" });
      showVerdict(box.querySelector("#loadtest-verdict"), report.verdict);
    }).catch(function (e) {
      error.textContent = e.message;
      error.hidden = false;
    });
  }

  function setUpReports() {
    var box = document.getElementById("loadtest-charts");
    if (!box) { return; }
    document.querySelectorAll("button.show-report").forEach(function (button) {
      button.addEventListener("click", function () { showReport(box, button.dataset.report); });
    });
    showReport(box, box.dataset.report);
  }

  /* The MLflow client prints links into MLflow's UI (/#/experiments/1/runs/<id>); open the same page here. */
  function followMlflowLink() {
    var match = /^#\/experiments\/(\d+)(?:\/runs\/([0-9a-f]{32}))?\/?$/.exec(window.location.hash);
    if (window.location.pathname !== "/" || !match) { return; }
    window.location.replace(match[2] ? "/runs/" + match[2] : "/experiments/" + match[1]);
  }

  function init() {
    followMlflowLink();
    setUpDialog();
    setUpTransitions();
    setUpAliases();
    setUpPolicy();
    setUpReports();
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
