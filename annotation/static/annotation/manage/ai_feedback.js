/* The AI feedback page: while a pass is queued or running (#ai-pass-list data-polling="1"), poll
   the passes API every two seconds and update each row's status, progress, verdicts, pairs, flip
   rate, tokens and seconds in place. Values are set with textContent, never as HTML. When no pass
   is active any more, polling stops (data-polling="0"); a pass that failed shows its error after
   a reload. */
(function () {
  "use strict";
  var POLL_MS = 2000;
  var table = document.getElementById("ai-pass-list");
  if (!table || table.getAttribute("data-polling") !== "1") return;
  var api = table.getAttribute("data-api");

  function set(row, field, text) {
    var node = row.querySelector('[data-field="' + field + '"]');
    if (node) node.textContent = text;
    return node;
  }

  function update(pass) {
    var row = document.getElementById("ai-pass-" + pass.id);
    if (!row) return;
    var stats = pass.stats || {};
    var percent = Math.round(100 * (pass.progress || 0));
    row.setAttribute("data-status", pass.status);
    var status = set(row, "status", pass.status);
    if (status) status.className = "run-status status-" + pass.status;
    var bar = row.querySelector('[data-field="progress"]');
    if (bar) bar.value = percent;
    set(row, "percent", String(percent));
    set(row, "done", String(pass.done));
    // a Constitutional AI batch's pairs are its kept (revised, original) pairs
    set(row, "pairs", String((pass.method === "cai" ? stats.kept : stats.pairs) || 0));
    set(row, "flip", stats.pairs ? (Math.round(1000 * stats.flip_rate) / 10) + " %" : "–");
    set(row, "tokens", String(stats.tokens || 0));
    set(row, "seconds", stats.seconds != null ? Number(stats.seconds).toFixed(1) : "–");
  }

  function poll() {
    fetch(api + "?limit=50", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (!body) { window.setTimeout(poll, POLL_MS * 4); return; }
        var active = false;
        body.results.forEach(function (pass) {
          update(pass);
          if (pass.status === "queued" || pass.status === "running") active = true;
        });
        table.setAttribute("data-polling", active ? "1" : "0");
        if (active) window.setTimeout(poll, POLL_MS);
      })
      .catch(function () { window.setTimeout(poll, POLL_MS * 4); });
  }

  window.setTimeout(poll, POLL_MS);
})();
