/* The run page: renders one retrain run from JSON (annotation/run_detail.py) and, while the run is
   queued or running, polls its data URL every second and redraws what changed, without a reload.
   The first render uses the JSON the server put in the page (json_script "run-detail").

   Everything from the server (model names, errors, step notes) is set with textContent, never
   as HTML. Charts go through PrefloopCharts (charts.js). State for tests and the benchmark is
   on #run-app: data-status, data-step, data-polling, data-renders.
*/
(function () {
  "use strict";
  var POLL_MS = 1000;
  var MAX_BACKOFF_MS = 8000;
  var app = document.getElementById("run-app");
  if (!app) return;
  var charts = {}; // id -> {chart, json}
  var renders = 0;
  var failures = 0;

  function $(id) { return document.getElementById(id); }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = String(text);
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function fmt(value) {
    if (value == null) return "–";
    if (typeof value === "number") {
      if (Number.isInteger(value)) return String(value);
      var abs = Math.abs(value);
      if (abs > 0 && abs < 0.001) return value.toPrecision(2);
      return abs >= 100 ? value.toFixed(1) : abs >= 1 ? value.toFixed(2) : value.toFixed(3);
    }
    if (typeof value === "boolean") return value ? "yes" : "no";
    return String(value);
  }

  function duration(seconds) {
    if (seconds == null) return "";
    if (seconds < 60) return (seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)) + " s";
    var m = Math.floor(seconds / 60);
    var s = Math.round(seconds - m * 60);
    return m + " min " + s + " s";
  }

  function percent(x) { return Math.round((x || 0) * 100) + " %"; }

  var STATE_TEXT = {
    done: "done", skipped: "skipped", running: "running", failed: "failed", pending: "pending",
  };

  function renderHead(d) {
    var status = $("run-status");
    status.textContent = d.status;
    status.className = "run-status status-" + d.status;
    var meta = "Trainers " + d.trainers.join(", ") + " · started by " + d.triggered_by +
      " · attempt " + (d.attempts || 0) + " · created " + (d.created_at || "").slice(0, 19).replace("T", " ") + " UTC";
    if (d.elapsed_seconds != null) meta += " · " + (d.active ? "running for " : "took ") + duration(d.elapsed_seconds);
    $("run-meta").textContent = meta;
    var names = d.steps.map(function (s) { return s.name; });
    var now = $("run-now");
    if (d.status === "queued") {
      now.textContent = "Queued: waiting for a worker on the gpu queue.";
    } else if (d.status === "running") {
      var i = names.indexOf(d.current_step);
      var step = d.steps[i] || { title: d.current_step };
      var text = "Step " + (i + 1) + " of " + names.length + ": " + step.title + " (" + d.current_step +
        ") · " + percent(d.step_progress);
      if (d.step_eta_seconds != null) text += " · about " + duration(d.step_eta_seconds) + " left in this step";
      if (d.eta_seconds != null) text += " · about " + duration(d.eta_seconds) + " left in the run";
      now.textContent = text;
    } else if (d.status === "succeeded") {
      now.textContent = "Finished: every step done in " + duration(d.elapsed_seconds) + ".";
    } else {
      now.textContent = "Failed at step " + (d.current_step || "?") + " after " + duration(d.elapsed_seconds) + ".";
    }
    // The nav's "Run N queued" link was written when the page loaded: keep it current.
    var nav = document.querySelector("a.retrain-active");
    if (nav && nav.pathname === window.location.pathname) {
      nav.textContent = "Run " + d.id + " " + d.status + (d.active && d.current_step ? " · " + d.current_step : "");
    }
    $("run-progress").value = d.progress;
    $("run-progress-text").textContent = percent(d.progress);
  }

  function renderSteps(d) {
    var list = $("run-steps");
    clear(list);
    d.steps.forEach(function (s) {
      var li = el("li", "run-step state-" + s.state);
      li.dataset.step = s.name;
      li.dataset.state = s.state;
      li.appendChild(el("span", "step-state", STATE_TEXT[s.state] || s.state));
      var name = el("span", "step-name");
      name.appendChild(el("code", null, s.name));
      name.appendChild(document.createTextNode(" " + s.title));
      li.appendChild(name);
      var time = "";
      if (s.state === "done" || s.state === "skipped") time = duration(s.seconds);
      else if (s.state === "running") time = duration(s.seconds) + (s.eta_seconds != null ? " · ~" + duration(s.eta_seconds) + " left" : "");
      else if (s.state === "failed") time = "stopped";
      else if (s.typical_seconds != null) time = "usually " + duration(s.typical_seconds);
      li.appendChild(el("span", "step-time", time));
      if (s.state === "running") {
        var bar = el("progress", "step-bar");
        bar.max = 1;
        bar.value = s.progress || 0;
        bar.setAttribute("aria-label", s.name + " progress");
        li.appendChild(bar);
      }
      if (s.note) li.appendChild(el("span", "step-note", s.note));
      list.appendChild(li);
    });
  }

  function drawCharts(container, specs) {
    var wanted = {};
    specs.forEach(function (item) {
      wanted[item.id] = true;
      var json = JSON.stringify(item.spec);
      var have = charts[item.id];
      if (!have) {
        var box = el("div", "chart-box run-chart");
        var canvas = el("canvas");
        canvas.id = item.id;
        canvas.setAttribute("role", "img");
        box.appendChild(canvas);
        container.appendChild(box);
        charts[item.id] = { chart: window.PrefloopCharts.render(canvas, item.spec), json: json, box: box };
      } else if (have.json !== json) {
        window.PrefloopCharts.update(have.chart, item.spec);
        have.json = json;
      }
    });
    return wanted;
  }

  function renderCharts(d) {
    if (!window.PrefloopCharts) return;
    drawCharts($("run-charts"), d.charts);
    $("run-curves-empty").hidden = d.charts.length > 0;
    if (d.evaluation_chart) drawCharts($("run-eval-chart"), [d.evaluation_chart]);
  }

  // Online RL (ppo, rloo, grpo, best_of_n): the monitors per step and the alarms, in words.
  function renderRL(d) {
    var rl = d.rl || { trainers: [], charts: [], alarms: [] };
    $("run-rl").hidden = !rl.trainers.length;
    var box = $("run-rl-alarms");
    clear(box);
    rl.alarms.forEach(function (a) {
      var p = el("p", "alert rl-alarm", "Alarm: " + a.text);
      p.dataset.alarm = a.alarm;
      p.dataset.trainer = a.trainer;
      box.appendChild(p);
    });
    $("run-rl-quiet").hidden = rl.alarms.length > 0;
    app.dataset.rlAlarms = String(rl.alarms.length);
    if (window.PrefloopCharts) drawCharts($("run-rl-charts"), rl.charts);
  }

  function cell(row, text, header) {
    var c = el(header ? "th" : "td", null, text);
    if (header) c.scope = "row";
    row.appendChild(c);
    return c;
  }

  function renderEvaluation(d) {
    var box = $("run-eval");
    clear(box);
    $("run-eval-empty").hidden = d.evaluation.length > 0;
    box.hidden = !d.evaluation.length;
    var evalStep = d.steps.filter(function (s) { return s.name === "evaluate"; })[0];
    if (!d.evaluation.length && evalStep && evalStep.note) {
      $("run-eval-empty").textContent = "Skipped: " + evalStep.note + ".";
    }
    if (!d.evaluation.length) return;
    var table = el("table", "data run-eval-table");
    var head = el("tr");
    ["new policy", "win rate", "95% interval", "KL (nats)", "length (tokens)", "change", "mean reward", "parent's", "passed"].forEach(function (h) {
      var th = el("th", null, h);
      th.scope = "col";
      head.appendChild(th);
    });
    var thead = el("thead");
    thead.appendChild(head);
    table.appendChild(thead);
    var body = el("tbody");
    d.evaluation.forEach(function (r) {
      var row = el("tr");
      cell(row, r.name, true);
      cell(row, fmt(r.win_rate));
      cell(row, r.win_rate_low != null ? fmt(r.win_rate_low) + " – " + fmt(r.win_rate_high) : "–");
      cell(row, fmt(r.kl));
      cell(row, fmt(r.mean_length) + " vs " + fmt(r.parent_mean_length));
      cell(row, r.length_change == null ? "–" : (r.length_change > 0 ? "+" : "") + fmt(r.length_change));
      cell(row, fmt(r.mean_reward));
      cell(row, fmt(r.parent_mean_reward));
      var verdict = cell(row, (r.passed ? "yes: " : "no: ") + r.reason);
      verdict.className = r.passed ? "pass" : "fail";
      body.appendChild(row);
    });
    table.appendChild(body);
    box.appendChild(table);
  }

  function renderVerdict(d) {
    var p = $("run-verdict");
    p.textContent = d.verdict.text;
    p.className = "verdict verdict-" + d.verdict.state;
    p.dataset.state = d.verdict.state;
    $("run-rule").textContent = "Promotion rule for this run: " + d.verdict.rule + ", judged by the run's reward model on held-out prompts.";
  }

  function renderError(d) {
    var box = $("run-error-box");
    box.hidden = !d.error;
    if (!d.error) return;
    $("run-error-summary").textContent = d.error.summary;
    $("run-error-where").textContent = d.error.where ? "at " + d.error.where : "";
    $("run-error-traceback").textContent = d.error.traceback;
  }

  function term(list, name, value) {
    var wrap = el("div");
    wrap.appendChild(el("dt", null, name));
    var dd = el("dd");
    if (value instanceof Node) dd.appendChild(value); else dd.textContent = value;
    wrap.appendChild(dd);
    list.appendChild(wrap);
  }

  function renderLineage(d) {
    var l = d.lineage;
    var list = $("run-lineage");
    clear(list);
    var snap = fmt(l.judgments) + " judgments";
    if (l.new_judgments != null) snap += " (" + fmt(l.new_judgments) + " new since the last successful run)";
    if (l.max_judgment_id) snap += ", up to judgment #" + l.max_judgment_id;
    term(list, "Data snapshot", snap);
    term(list, "Parent policy", l.parent ? l.parent.name : "–");
    term(list, "Judge (reward model)", l.judge || "–");
    var versions = el("ul", "plain");
    l.versions.forEach(function (v) {
      var text = v.name + " · " + v.kind + " (" + v.trainer + "), " + v.status + (v.is_active ? ", active" : "");
      if (v.parent) text += " · from " + v.parent;
      if (v.rl) {
        text += " · " + v.rl.method + " against " + (v.rl.reward_model || "–") + ", β " + fmt(v.rl.beta) +
          (v.rl.adaptive_kl ? " (final, adapted)" : "") + ", k " + fmt(v.rl.k) + ", " + fmt(v.rl.steps) + " steps";
      }
      versions.appendChild(el("li", null, text));
    });
    term(list, "New versions", l.versions.length ? versions : "none yet");
    var cands = fmt(l.candidates) + " responses";
    if (l.candidate_prompts != null) cands += " for " + fmt(l.candidate_prompts) + " prompts";
    if (l.generator) cands += ", sampled from " + l.generator;
    if (l.dropped_candidates) cands += "; " + l.dropped_candidates;
    term(list, "Generated candidates", cands);
    var kinds = Object.keys(l.tasks_by_kind).map(function (k) { return k + " " + l.tasks_by_kind[k]; });
    term(list, "Labeling tasks created", fmt(l.tasks) + (kinds.length ? " (" + kinds.join(", ") + ")" : ""));
    var api = el("a", null, "this run as JSON (API)");
    api.href = app.dataset.api;
    term(list, "Everything recorded", api);
  }

  function renderStepMetrics(d) {
    var box = $("run-step-metrics");
    clear(box);
    d.steps.forEach(function (s) {
      var keys = Object.keys(s.metrics || {});
      if (!keys.length) return;
      var table = el("table", "data run-metric-table");
      var caption = el("caption");
      caption.appendChild(el("code", null, s.name));
      table.appendChild(caption);
      var body = el("tbody");
      keys.forEach(function (k) {
        var row = el("tr");
        cell(row, k, true);
        cell(row, fmt(s.metrics[k]));
        body.appendChild(row);
      });
      table.appendChild(body);
      var wrap = el("div", "table-scroll");
      wrap.appendChild(table);
      box.appendChild(wrap);
    });
  }

  function render(d) {
    renderHead(d);
    renderError(d);
    renderVerdict(d);
    renderSteps(d);
    renderCharts(d);
    renderRL(d);
    renderEvaluation(d);
    renderLineage(d);
    renderStepMetrics(d);
    renders += 1;
    app.dataset.status = d.status;
    app.dataset.step = d.current_step || "";
    app.dataset.stepProgress = String(d.step_progress);
    app.dataset.renders = String(renders);
  }

  function schedule(ms) {
    app.dataset.polling = "1";
    window.setTimeout(poll, ms);
  }

  function poll() {
    fetch(app.dataset.url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (d) {
        failures = 0;
        $("run-connection").hidden = true;
        render(d);
        if (d.active) schedule(POLL_MS);
        else app.dataset.polling = "0";
      })
      .catch(function (err) {
        failures += 1;
        var wait = Math.min(MAX_BACKOFF_MS, POLL_MS * Math.pow(2, failures));
        var note = $("run-connection");
        note.hidden = false;
        note.textContent = "Could not refresh (" + err.message + "); trying again in " + Math.round(wait / 1000) + " s.";
        schedule(wait);
      });
  }

  function start() {
    var first = JSON.parse($("run-detail").textContent);
    render(first);
    if (first.active) schedule(POLL_MS);
    else app.dataset.polling = "0";
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
