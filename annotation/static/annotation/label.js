/* The labeling page: keyboard shortcuts, drafts, the submit queue, prefetch, undo.
 *
 * State lives in the form controls of the task on screen (radios, checkboxes, text boxes), so
 * the page works with a mouse, a keyboard or a screen reader alike, and a draft is just the
 * form's values saved to localStorage on every change.
 *
 * Answers (submit, revise, skip) go through a queue kept in localStorage. Each item carries the
 * Idempotency-Key it was created with, so a retry never stores a second judgment. A failed
 * connection or a 5xx is retried with back-off (and at once when the browser is online again) up
 * to a cap, then the answer is kept and shown with Retry and Discard; an answer the server refuses
 * (a 4xx) is shown with the server's reason; either way the answers behind it go on (see "queue").
 * The next task is fetched (as server-rendered, sanitised HTML) while the rater works on this one,
 * so after a submit it is swapped in from memory. No untrusted text is ever put into the page by
 * this script except that server HTML; the notices (label-notices.js) set only textContent.
 */
(function () {
  "use strict";

  var app = document.getElementById("label-app");
  if (!app) return;

  var UNDO_MS = Number(app.dataset.undoSeconds || 10) * 1000;
  var NEXT_URL = app.dataset.nextUrl;
  var PREFIX = "prefloop:" + app.dataset.user + ":" + app.dataset.project + ":";
  var slot = document.getElementById("task-slot");
  var timerEl = document.getElementById("timer");
  var netEl = document.getElementById("net");
  var statusEl = document.getElementById("status");
  var alertEl = document.getElementById("alert");
  var noticesEl = document.getElementById("notices");
  var notices = window.prefloopNotices; // label-notices.js
  var undoBtn = document.getElementById("btn-undo");
  var undoLeft = document.getElementById("undo-left");
  var todayEl = document.getElementById("today-count");
  var guidelines = document.getElementById("guidelines");
  var helpDialog = document.getElementById("help-dialog");
  var skipDialog = document.getElementById("skip-dialog");

  var current = null; // {id, kind, form, startedAt, revising}
  var prefetched = null; // {id, frag} | {id: null} (nothing left)
  var prefetching = null; // Promise while a prefetch is in flight
  var undoState = null; // {task, deadline, timer}
  var submitClickedAt = 0;
  window.prefloopTimings = []; // ms from the submit key to the next task painted (bench/ui.py)

  // ---------------------------------------------------------------- storage
  function load(key, fallback) {
    try {
      var raw = localStorage.getItem(PREFIX + key);
      return raw === null ? fallback : JSON.parse(raw);
    } catch (e) {
      return fallback;
    }
  }
  function save(key, value) {
    try {
      localStorage.setItem(PREFIX + key, JSON.stringify(value));
    } catch (e) {
      say("Your browser refused to save a draft (storage full?).", true);
    }
  }
  function drop(key) {
    try {
      localStorage.removeItem(PREFIX + key);
    } catch (e) { /* nothing to drop */ }
  }

  function csrfToken() {
    var m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }
  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var a = new Uint8Array(16);
    crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  // ---------------------------------------------------------------- messages
  var sayTimer = null;
  function say(text, isError) {
    if (isError) {
      alertEl.textContent = text;
      alertEl.hidden = false;
      return;
    }
    statusEl.textContent = text;
    clearTimeout(sayTimer);
    if (text) sayTimer = setTimeout(function () { statusEl.textContent = ""; }, 4000);
  }
  function clearAlert() {
    alertEl.hidden = true;
    alertEl.textContent = "";
  }

  // ---------------------------------------------------------------- drafts
  function formValues(form) {
    var values = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name) return;
      if (el.type === "radio") {
        if (el.checked) values[el.name] = el.value;
      } else if (el.type === "checkbox") {
        values[el.name] = values[el.name] || [];
        if (el.checked) values[el.name].push(el.value);
      } else {
        values[el.name] = el.value;
      }
    });
    return values;
  }
  function setValues(form, values) {
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || !(el.name in values)) return;
      var v = values[el.name];
      if (el.type === "radio") el.checked = v === el.value;
      else if (el.type === "checkbox") el.checked = v.indexOf(el.value) >= 0;
      else el.value = v;
    });
  }
  function saveDraft() {
    if (!current) return;
    save("draft:" + current.id, {
      values: formValues(current.form),
      startedAt: current.startedAt,
      savedAt: Date.now(),
    });
  }
  function pruneDrafts() {
    var week = 7 * 24 * 3600 * 1000;
    try {
      for (var i = localStorage.length - 1; i >= 0; i--) {
        var k = localStorage.key(i);
        if (k && k.indexOf(PREFIX + "draft:") === 0) {
          var d = JSON.parse(localStorage.getItem(k) || "{}");
          if (!d.savedAt || Date.now() - d.savedAt > week) localStorage.removeItem(k);
        }
      }
    } catch (e) { /* best effort */ }
  }

  // ---------------------------------------------------------------- queue
  // What the server says decides what happens to an answer:
  // - 2xx: stored (a retry with the same Idempotency-Key answers 200 with the first judgment);
  // - 401/403: the session ended or the CSRF token is stale; kept and retried until the rater is
  //   logged in again (the page says so). A 403 with code "excluded" is final, like a 4xx below;
  // - any other 4xx: final. The answer leaves the queue and is shown as refused, with the
  //   server's reason (a skip answered 409 was already settled: nothing to show);
  // - 5xx, 408, 429, or no connection while the browser says it is online: retried with back-off
  //   up to MAX_TRIES, then held (kept, not sent on its own) and shown with Retry and Discard.
  //   While the browser is offline nothing is counted: the queue waits for the "online" event.
  // The answers behind a refused or held one go on (a change to a held answer waits for it).
  var MAX_TRIES = 5;
  var sending = false;
  var retryTimer = null;
  var backoff = 1000; // waits that are not counted: offline, logged out
  var waitingFor = null; // the assignment whose held answer keeps the next task from loading

  function queue() { return load("queue", []); }
  function setQueue(q) {
    save("queue", q);
    showNet();
    showNotices();
  }
  function patchItem(key, patch) {
    setQueue(queue().map(function (it) { return it.key === key ? Object.assign({}, it, patch) : it; }));
  }
  function dropItem(key) { setQueue(queue().filter(function (it) { return it.key !== key; })); }
  function refusals() { return load("refused", []); }
  function setRefusals(list) {
    save("refused", list.slice(-20));
    showNotices();
  }
  function refuse(item, reason, final) {
    setRefusals(refusals().concat([{
      key: item.key, type: item.type, task: item.task, shown: item.shown, reason: reason,
      final: Boolean(final), // the task does not come back (the rater was excluded)
    }]));
  }
  function judgmentFor(assignmentId) { return load("judgments", {})[assignmentId]; }
  function rememberJudgment(assignmentId, judgmentId) {
    var m = load("judgments", {});
    m[assignmentId] = judgmentId;
    var keys = Object.keys(m);
    if (keys.length > 200) delete m[keys[0]];
    save("judgments", m);
  }
  function isQueued(assignmentId) {
    return queue().some(function (it) { return String(it.assignment) === String(assignmentId); });
  }
  function isHeld(assignmentId) {
    return queue().some(function (it) { return it.held && String(it.assignment) === String(assignmentId); });
  }
  // The first answer that may be sent now: not held, and not a change to a held answer.
  function nextToSend(q) {
    var blocked = {};
    for (var i = 0; i < q.length; i++) {
      if (q[i].held) blocked[q[i].assignment] = true;
      else if (!blocked[q[i].assignment]) return q[i];
    }
    return null;
  }
  function showNet() {
    var q = queue();
    var held = q.filter(function (it) { return it.held; }).length;
    var n = q.length - held;
    var parts = [];
    if (n) {
      parts.push((navigator.onLine ? "Sending " : "Offline: ") + n + " answer" + (n > 1 ? "s" : "") +
        (navigator.onLine ? "…" : " kept, sent when you are back online"));
    }
    if (held) parts.push(held + " answer" + (held > 1 ? "s" : "") + " not sent (see below)");
    if (!parts.length) {
      netEl.textContent = navigator.onLine ? "" : "Offline";
      netEl.className = "net";
      return;
    }
    netEl.textContent = parts.join(" · ");
    netEl.className = "net pending";
  }
  var shownNotices = "";
  function showNotices() {
    var list = refusals().map(function (r) {
      return { key: r.key, type: r.type, task: r.task, shown: r.shown, reason: r.reason, held: false, final: r.final };
    }).concat(queue().filter(function (it) { return it.held; }).map(function (it) {
      return { key: it.key, type: it.type, task: it.task, shown: it.shown, reason: it.error, held: true, tries: it.tries };
    }));
    // Redrawn only when the list changes, so a focused button keeps its focus.
    var signature = JSON.stringify(list.map(function (n) { return [n.key, n.held, n.tries, n.reason]; }));
    if (signature === shownNotices) return;
    shownNotices = signature;
    notices.render(noticesEl, list);
  }
  noticesEl.addEventListener("click", function (e) {
    var b = e.target.closest("button[data-action]");
    if (!b) return;
    var key = b.dataset.key;
    var item = queue().filter(function (it) { return it.key === key; })[0];
    if (b.dataset.action === "dismiss") {
      setRefusals(refusals().filter(function (r) { return r.key !== key; }));
    } else if (b.dataset.action === "retry" && item) {
      patchItem(key, { held: false, tries: 0, error: "" });
      flush();
    } else if (b.dataset.action === "discard" && item) {
      dropItem(key);
      say("The answer was discarded; nothing was stored.");
      settled(item);
      flush();
    }
    if (current && current.form) current.form.querySelector(".task-title").focus({ preventScroll: true });
  });
  function enqueue(item) {
    var q = queue();
    q.push(item);
    setQueue(q);
    flush();
  }
  function scheduleRetry(delay) {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(flush, delay);
  }
  function waitUncounted() {
    scheduleRetry(backoff);
    backoff = Math.min(backoff * 2, 15000);
  }
  function failed(item, reason) {
    var tries = (item.tries || 0) + 1;
    if (tries < MAX_TRIES) {
      patchItem(item.key, { tries: tries, error: reason });
      scheduleRetry(Math.min(1000 * Math.pow(2, tries - 1), 15000));
      return;
    }
    patchItem(item.key, { tries: tries, error: reason, held: true });
    flush(); // the answers behind it go on
  }
  // An answer left the queue (stored, refused or discarded): the next task may load now.
  function settled(item) {
    if (waitingFor !== null && String(waitingFor) === String(item.assignment) && !isQueued(item.assignment)) {
      waitingFor = null;
      advance();
    }
  }
  function urlFor(item) {
    if (item.type === "submit") return "/api/assignments/" + item.assignment + "/judgment/";
    if (item.type === "skip") return "/api/assignments/" + item.assignment + "/skip/";
    var jid = judgmentFor(item.assignment);
    return jid ? "/api/judgments/" + jid + "/revise/" : null;
  }

  var flushWaiters = [];
  function whenFlushed() {
    if (!nextToSend(queue())) return Promise.resolve();
    return new Promise(function (resolve) { flushWaiters.push(resolve); });
  }
  function flush() {
    if (sending) return;
    clearTimeout(retryTimer);
    var item = nextToSend(queue());
    if (!item) {
      flushWaiters.splice(0).forEach(function (f) { f(); });
      return;
    }
    var url = urlFor(item);
    if (!url) {
      // A revision of a judgment whose id we never learned: nothing to revise.
      dropItem(item.key);
      refuse(item, "its first version was never acknowledged by the server, so there is nothing to change.");
      settled(item);
      flush();
      return;
    }
    sending = true;
    showNet();
    fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "X-CSRFToken": csrfToken(),
        "Idempotency-Key": item.key,
      },
      body: JSON.stringify(item.body),
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (data) {
        return { status: resp.status, ok: resp.ok, data: data };
      });
    }).then(function (r) {
      sending = false;
      if ((r.status === 401 || r.status === 403) && r.data.code !== "excluded") {
        say("The server refused your answer (" + (r.data.error || r.status) + "). " +
          "If your session ended, log in again in another tab; your answers are kept here.", true);
        waitUncounted();
        showNet();
        return;
      }
      if (r.status >= 500 || r.status === 408 || r.status === 429) {
        failed(item, "the server answered " + r.status + (r.data.error ? " (" + r.data.error + ")" : "") + ".");
        return;
      }
      backoff = 1000;
      dropItem(item.key);
      if (r.ok) {
        if (item.type !== "skip" && r.data.id) rememberJudgment(item.assignment, r.data.id);
        if (item.type === "submit") todayEl.textContent = String(Number(todayEl.textContent) + 1);
      } else if (!(item.type === "skip" && r.status === 409)) {
        refuse(item, r.data.error || "error " + r.status + ".", r.data.code === "excluded");
        if (r.data.code === "excluded") stopLabeling(r.data.error);
      }
      settled(item);
      flush();
      if (!queue().length) prefetch();
    }, function () {
      sending = false;
      if (!navigator.onLine) {
        waitUncounted(); // sent on the "online" event
        showNet();
        return;
      }
      failed(item, "the server could not be reached.");
    });
  }
  window.addEventListener("online", function () {
    // Back online: everything is tried again, held answers too.
    backoff = 1000;
    setQueue(queue().map(function (it) { return Object.assign({}, it, { held: false, tries: 0 }); }));
    flush();
  });
  window.addEventListener("offline", showNet);

  // ---------------------------------------------------------------- fetching tasks
  function parseTask(resp) {
    if (resp.status === 204) return { id: null };
    if (resp.headers.get("X-Refusal-Code")) {
      // Final (a manager excluded this rater): say why and stop asking.
      return resp.text().then(function (reason) {
        var refusal = new Error(reason);
        refusal.final = true;
        throw refusal;
      });
    }
    if (!resp.ok) throw new Error("HTTP " + resp.status);
    var id = resp.headers.get("X-Assignment-Id");
    if (!id) {
      // Redirected to the login page: the session ended. Answers stay queued.
      say("Your session ended. Log in again in another tab; your answers are kept here.", true);
      throw new Error("not a task");
    }
    return resp.text().then(function (html) {
      var tpl = document.createElement("template");
      tpl.innerHTML = html; // our own server's sanitised fragment
      return { id: id, frag: tpl.content };
    });
  }
  function fetchTask(isPrefetch) {
    return fetch(NEXT_URL, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded", "X-CSRFToken": csrfToken() },
      body: "prefetch=" + (isPrefetch ? "1" : "0"),
    }).then(parseTask);
  }
  function prefetch() {
    // Only once every earlier answer is acknowledged: until then the server still counts the
    // answered task as held, and would hand it back as "the next one".
    if (stopped || prefetched || prefetching || !current || current.id === null || queue().length) return;
    var forId = current.id;
    prefetching = fetchTask(true).then(function (t) {
      prefetching = null;
      if (!current || current.id !== forId) return;
      if (t.id !== null && (String(t.id) === String(current.id) || isQueued(t.id))) return;
      prefetched = t;
      app.dataset.prefetched = String(t.id); // observable by tests and bench/ui.py
    }, function (err) {
      prefetching = null;
      if (err && err.final) stopLabeling(err.message);
    });
  }

  // ---------------------------------------------------------------- showing a task
  function mount(nodeOrFrag) {
    slot.replaceChildren(nodeOrFrag);
    var form = slot.querySelector("form.task");
    clearAlert();
    if (!form) {
      current = { id: null };
      timerEl.textContent = "–";
      var empty = slot.querySelector("#task-empty");
      if (empty) empty.focus();
      return;
    }
    var id = form.dataset.assignment;
    var draft = load("draft:" + id, null);
    current = {
      id: id,
      kind: form.dataset.kind,
      form: form,
      startedAt: draft && draft.startedAt ? draft.startedAt : Date.now(),
      revising: form.dataset.revising === "1",
    };
    if (!form.dataset.bound) bindForm(form);
    if (draft && draft.values) setValues(form, draft.values);
    refresh();
    tick();
    var title = form.querySelector(".task-title");
    if (title) title.focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }
  function markPainted(id, fromMemory) {
    if (!submitClickedAt) return;
    var started = submitClickedAt;
    submitClickedAt = 0;
    requestAnimationFrame(function () {
      setTimeout(function () {
        window.prefloopTimings.push({ id: id, ms: performance.now() - started, prefetched: fromMemory });
        app.dataset.shown = String(id);
      }, 0);
    });
  }
  function advance() {
    if (stopped) return;
    if (prefetched) {
      var t = prefetched;
      prefetched = null;
      show(t);
      markPainted(t.id, true);
      if (!queue().length) prefetch();
      return;
    }
    // Not prefetched yet (very fast rater, or offline): wait for the answers to land first.
    slot.replaceChildren(loadingNode());
    current = null;
    say(navigator.onLine ? "Loading the next task…" :
      "You are offline: your answer is kept, and the next task loads when you are back online.");
    var wait = prefetching || whenFlushed().then(function () { return fetchTask(false); });
    Promise.resolve(wait).then(function (t) {
      if (prefetched) {
        t = prefetched;
        prefetched = null;
      }
      if (!t) return whenFlushed().then(function () { return fetchTask(false); });
      return t;
    }).then(function (t) {
      say("");
      show(t);
      markPainted(t.id, false);
      prefetch();
    }, function (err) {
      if (err && err.final) {
        stopLabeling(err.message);
        return;
      }
      say("Could not load the next task; retrying…", true);
      setTimeout(advance, 2000);
    });
  }
  // A task from the server, unless its answer is held in the queue: the server hands that task
  // back (its lease is still live), and showing it again would invite a second answer. Wait for
  // the held answer to be retried or discarded instead.
  function show(t) {
    if (t.id === null || !isHeld(t.id)) {
      waitingFor = null;
      mount(t.id === null ? emptyNode() : t.frag);
      return;
    }
    waitingFor = t.id;
    current = null;
    timerEl.textContent = "–";
    slot.replaceChildren(waitingNode());
    var retry = noticesEl.querySelector('button[data-action="retry"]');
    if (retry) retry.focus();
  }
  // Final refusal of this rater (a manager excluded them): the task on screen and any prefetched
  // one are no longer theirs, so the page says why and asks for nothing more. Queued answers are
  // still sent, and each is shown as refused with the server's reason.
  var stopped = false;
  function stopLabeling(reason) {
    stopped = true;
    prefetched = null;
    current = { id: null };
    timerEl.textContent = "–";
    stopUndo(); // nothing can be taken back or skipped: the rater's leases have ended
    document.getElementById("btn-skip").hidden = true;
    say("");
    clearAlert();
    slot.replaceChildren(refusedNode(reason));
  }
  function refusedNode(reason) {
    var s = document.createElement("section");
    s.className = "empty";
    s.id = "task-refused";
    var h = document.createElement("h2");
    h.textContent = "You cannot label this project now";
    var p = document.createElement("p");
    p.setAttribute("role", "alert");
    p.textContent = reason;
    var back = document.createElement("a");
    back.href = "/";
    back.textContent = "Back to your projects";
    s.append(h, p, back);
    return s;
  }
  function waitingNode() {
    var s = document.createElement("section");
    s.className = "empty";
    s.id = "task-waiting";
    var h = document.createElement("h2");
    h.textContent = "Waiting for an answer that was not sent";
    var p = document.createElement("p");
    p.textContent = "The server has not taken one of your answers (see above). Retry it, or " +
      "discard it to answer that task again; the next task loads when it is settled.";
    s.append(h, p);
    return s;
  }
  function loadingNode() {
    var p = document.createElement("p");
    p.className = "loading";
    p.textContent = "Loading the next task…";
    return p;
  }
  function emptyNode() {
    var s = document.createElement("section");
    s.className = "empty";
    s.id = "task-empty";
    s.tabIndex = -1;
    var h = document.createElement("h2");
    h.textContent = "No task for you right now";
    var p = document.createElement("p");
    var a = document.createElement("a");
    a.href = "/";
    a.textContent = "Back to your projects";
    p.appendChild(a);
    s.append(h, p);
    return s;
  }

  // ---------------------------------------------------------------- per-kind behaviour
  function cards() { return current ? Array.prototype.slice.call(current.form.querySelectorAll(".card")) : []; }
  function activeCard() {
    var el = document.activeElement;
    var card = el && el.closest ? el.closest(".card") : null;
    return card && current && current.form.contains(card) ? card : null;
  }
  function focusCard(delta) {
    var list = cards();
    if (!list.length) return;
    var i = list.indexOf(activeCard());
    var next = list[Math.max(0, Math.min(list.length - 1, i < 0 ? 0 : i + delta))];
    next.focus();
  }
  function checkRadio(form, name, value) {
    var el = form.querySelector('input[type=radio][name="' + name + '"][value="' + value + '"]');
    if (!el || el.disabled) return false;
    el.checked = true;
    el.dispatchEvent(new Event("change", { bubbles: true }));
    return true;
  }
  function rankOf(form, rid) {
    var el = form.querySelector('input[name="rank-' + rid + '"]:checked');
    return el ? Number(el.value) : 0;
  }

  function refresh() {
    if (!current || !current.form) return;
    var form = current.form;
    form.querySelector(".revising").hidden = !current.revising;
    if (current.kind === "pairwise") {
      var choice = form.querySelector('input[name="choice"]:checked');
      var needs = choice && (choice.value === "A" || choice.value === "B");
      var fs = form.querySelector("#strength");
      fs.disabled = !needs;
      if (!needs) form.querySelectorAll('input[name="strength"]').forEach(function (r) { r.checked = false; });
    } else if (current.kind === "ranking") {
      var board = form.querySelector("#board");
      cards().forEach(function (card) {
        var rid = card.dataset.response;
        var rank = rankOf(form, rid);
        card.querySelector("[data-badge]").textContent = rank ? "rank " + rank : "";
        card.classList.toggle("ranked", !!rank);
        var chip = board.querySelector('.chip[data-response="' + rid + '"]');
        board.querySelector('.slot[data-rank="' + rank + '"] .chips').appendChild(chip);
      });
    } else if (current.kind === "rating") {
      cards().forEach(function (card) {
        card.classList.toggle("ranked", !!card.querySelector('input[name^="thumb-"]:checked'));
      });
    } else if (current.kind === "demonstration") {
      var based = form.querySelector('input[name="based_on"]').value;
      var note = form.querySelector("#based-on");
      var card = based ? form.querySelector('.card[data-response="' + based + '"]') : null;
      note.textContent = card ? "Editing candidate " + card.dataset.label + " (the original is kept)." : "Written from scratch.";
    }
  }

  function bindForm(form) {
    form.dataset.bound = "1";
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      submit();
    });
    form.addEventListener("change", function () {
      clearAlert();
      refresh();
      saveDraft();
    });
    form.addEventListener("input", saveDraft);
    var diffBtn = form.querySelector("#btn-diff");
    if (diffBtn) diffBtn.addEventListener("click", toggleDiff);
    form.querySelectorAll(".start-from").forEach(function (b) {
      b.addEventListener("click", function () { startFrom(b.dataset.response); });
    });
    var blank = form.querySelector(".start-blank");
    if (blank) blank.addEventListener("click", function () {
      form.querySelector('input[name="based_on"]').value = "";
      form.querySelector("#demo-text").value = "";
      refresh();
      saveDraft();
      form.querySelector("#demo-text").focus();
    });
    bindDrag(form);
  }

  function toggleDiff() {
    var form = current.form;
    var btn = form.querySelector("#btn-diff");
    var on = btn.getAttribute("aria-pressed") !== "true";
    btn.setAttribute("aria-pressed", String(on));
    btn.firstChild.textContent = on ? "Hide differences " : "Show differences ";
    form.querySelectorAll(".pair .md").forEach(function (el) { el.hidden = on; });
    form.querySelectorAll(".pair .diff").forEach(function (el) { el.hidden = !on; });
  }

  function startFrom(rid) {
    var form = current.form;
    var card = form.querySelector('.card[data-response="' + rid + '"]');
    if (!card) return;
    var text = form.querySelector("#demo-text");
    text.value = card.querySelector("template.raw").content.textContent;
    form.querySelector('input[name="based_on"]').value = rid;
    refresh();
    saveDraft();
    text.focus();
    text.setSelectionRange(text.value.length, text.value.length);
  }

  function bindDrag(form) {
    var board = form.querySelector("#board");
    if (!board) return;
    board.addEventListener("dragstart", function (e) {
      var chip = e.target.closest(".chip");
      if (!chip) return;
      e.dataTransfer.setData("text/plain", chip.dataset.response);
      e.dataTransfer.effectAllowed = "move";
    });
    board.addEventListener("dragover", function (e) {
      if (e.target.closest(".slot")) {
        e.preventDefault();
        e.dataTransfer.dropEffect = "move";
      }
    });
    board.addEventListener("drop", function (e) {
      var target = e.target.closest(".slot");
      if (!target) return;
      e.preventDefault();
      setRank(e.dataTransfer.getData("text/plain"), Number(target.dataset.rank));
    });
    // Dragging a whole response card onto the board works too.
    form.querySelectorAll(".card").forEach(function (card) {
      card.draggable = true;
      card.addEventListener("dragstart", function (e) {
        if (e.target !== card) return;
        e.dataTransfer.setData("text/plain", card.dataset.response);
      });
    });
  }
  function setRank(rid, rank) {
    var form = current.form;
    if (rank === 0) {
      form.querySelectorAll('input[name="rank-' + rid + '"]').forEach(function (r) { r.checked = false; });
      form.dispatchEvent(new Event("change"));
      return;
    }
    checkRadio(form, "rank-" + rid, rank);
  }

  // ---------------------------------------------------------------- building the answer
  function buildBody() {
    var form = current.form;
    var v = formValues(form);
    var ids = form.dataset.responses.split(",").map(Number);
    var body = {
      flags: v.flag || [],
      rationale: (v.rationale || "").trim(),
      time_spent_ms: Math.min(Date.now() - current.startedAt, 24 * 3600 * 1000 - 1),
    };
    var focusTo = null;
    var problem = null;
    if (current.kind === "pairwise") {
      if (!v.choice) {
        problem = "Choose which response is better (A, B, T for tie, X for both bad).";
        focusTo = form.querySelector('input[name="choice"]');
      } else if ((v.choice === "A" || v.choice === "B") && !v.strength) {
        problem = "Say how much better " + v.choice + " is (1–4).";
        focusTo = form.querySelector('input[name="strength"]');
      } else {
        body.choice = v.choice;
        if (v.strength && (v.choice === "A" || v.choice === "B")) body.strength = Number(v.strength);
      }
    } else if (current.kind === "ranking") {
      var missing = [];
      var groups = {};
      ids.forEach(function (rid) {
        var rank = rankOf(form, rid);
        if (!rank) missing.push(form.querySelector('.card[data-response="' + rid + '"]').dataset.label);
        else (groups[rank] = groups[rank] || []).push(rid);
      });
      if (missing.length) {
        problem = "The ranking is incomplete: give " + missing.join(", ") + " a rank before submitting.";
        focusTo = form.querySelector('.card[data-label="' + missing[0] + '"]');
      } else {
        body.ranking = Object.keys(groups).map(Number).sort(function (a, b) { return a - b; })
          .map(function (r) { return groups[r]; });
      }
    } else if (current.kind === "rating") {
      var unrated = [];
      body.ratings = ids.map(function (rid) {
        var card = form.querySelector('.card[data-response="' + rid + '"]');
        if (!v["thumb-" + rid]) unrated.push(card.dataset.label);
        return { response: rid, thumb: v["thumb-" + rid], likert: v["likert-" + rid] ? Number(v["likert-" + rid]) : null };
      });
      if (unrated.length) {
        problem = "Give a thumb up or down to " + unrated.join(", ") + ".";
        focusTo = form.querySelector('.card[data-label="' + unrated[0] + '"]');
      }
    } else {
      if (!(v.text || "").trim()) {
        problem = "Write the ideal response (or start from a candidate) before submitting.";
        focusTo = form.querySelector("#demo-text");
      }
      body.text = v.text || "";
      body.based_on = v.based_on ? Number(v.based_on) : null;
    }
    return { body: body, problem: problem, focusTo: focusTo };
  }

  function taskNumber(form) {
    return form.querySelector(".task-title .muted").textContent.replace("#", "");
  }
  function submit() {
    if (!current || !current.form) return;
    var built = buildBody();
    if (built.problem) {
      say(built.problem, true);
      if (built.focusTo) built.focusTo.focus();
      return;
    }
    submitClickedAt = performance.now();
    var done = current;
    var item = {
      type: done.revising ? "revise" : "submit",
      assignment: done.id,
      task: taskNumber(done.form),
      key: newKey(),
      body: built.body,
      shown: notices.describe(done.form, done.kind, built.body),
    };
    // Leave the text box first: its "change" event (fired when the form leaves the page) would
    // save the answer as a draft again, and a task that comes back (refused) would reopen with it.
    if (done.form.contains(document.activeElement)) document.activeElement.blur();
    enqueue(item);
    drop("draft:" + done.id);
    say(done.revising ? "Your change was saved as a new revision." : "Submitted.");
    done.form.dataset.revising = "0";
    var resume = undoState && undoState.resume;
    stopUndo();
    if (resume) {
      // Back from an undo: return to the task that was on screen before it.
      mount(resume);
      markPainted(current.id, true);
    } else {
      advance();
    }
    startUndo(done, item);
  }

  // ---------------------------------------------------------------- undo
  function startUndo(done, item) {
    var deadline = Date.now() + UNDO_MS;
    undoState = { done: done, item: item, deadline: deadline, resume: null };
    undoBtn.hidden = false;
    undoTick();
    undoState.timer = setInterval(undoTick, 500);
  }
  function undoTick() {
    if (!undoState) return;
    var left = Math.ceil((undoState.deadline - Date.now()) / 1000);
    if (left <= 0) return stopUndo();
    undoLeft.textContent = "(" + left + " s)";
  }
  function stopUndo() {
    if (undoState && undoState.timer) clearInterval(undoState.timer);
    undoState = null;
    undoBtn.hidden = true;
  }
  function undo() {
    if (!undoState || !undoState.done || !current) return;
    var done = undoState.done;
    stopUndo();
    // Keep the task now on screen (still leased) to come back to after the change.
    var resume = current.form || slot.firstElementChild;
    var resumeFrag = document.createDocumentFragment();
    if (resume) resumeFrag.appendChild(resume);
    if (current.id && current.form) saveDraft();
    done.form.dataset.revising = "1";
    mount(done.form);
    current.startedAt = done.startedAt;
    current.revising = true;
    refresh();
    undoState = { resume: resumeFrag, deadline: Infinity };
    say("Change your answer and submit again: a new revision is stored, the first is kept.");
  }
  undoBtn.addEventListener("click", undo);

  // ---------------------------------------------------------------- skip
  function openSkip() {
    if (!current || !current.form) return;
    if (current.revising) {
      say("This task is already answered; submit your change or reload to move on.", true);
      return;
    }
    document.getElementById("skip-error").hidden = true;
    skipDialog.showModal();
    var first = skipDialog.querySelector('input[name="skip-reason"]');
    first.focus();
  }
  function skipReason() {
    var picked = skipDialog.querySelector('input[name="skip-reason"]:checked');
    var other = document.getElementById("skip-other").value.trim();
    if (!picked && other) return other;
    if (!picked) return "";
    if (picked.value === "other") return other;
    return other ? picked.value + ": " + other : picked.value;
  }
  document.getElementById("skip-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var reason = skipReason();
    var err = document.getElementById("skip-error");
    if (!reason) {
      err.textContent = "Pick or write a reason to skip.";
      err.hidden = false;
      return;
    }
    skipDialog.close();
    skipDialog.querySelector("form").reset();
    var done = current;
    reason = reason.slice(0, 500);
    enqueue({
      type: "skip",
      assignment: done.id,
      task: taskNumber(done.form),
      key: newKey(),
      body: { reason: reason },
      shown: notices.describeSkip(done.form, reason),
    });
    drop("draft:" + done.id);
    stopUndo();
    say("Skipped.");
    submitClickedAt = performance.now();
    advance();
  });
  document.getElementById("skip-cancel").addEventListener("click", function () { skipDialog.close(); });
  document.getElementById("btn-skip").addEventListener("click", openSkip);
  document.getElementById("btn-help").addEventListener("click", function () { helpDialog.showModal(); });
  skipDialog.addEventListener("keydown", function (e) {
    if (e.target.type !== "text" && /^[1-4]$/.test(e.key)) {
      var r = skipDialog.querySelectorAll('input[name="skip-reason"]')[Number(e.key) - 1];
      r.checked = true;
      if (r.value === "other") document.getElementById("skip-other").focus();
      else r.focus();
      e.preventDefault();
    } else if (e.key === "Enter" && e.target.tagName !== "BUTTON") {
      e.preventDefault();
      skipDialog.querySelector("form").requestSubmit();
    }
  });

  // ---------------------------------------------------------------- timer
  function fmt(ms) {
    var s = Math.floor(ms / 1000);
    var m = Math.floor(s / 60);
    s = s % 60;
    return m + ":" + (s < 10 ? "0" : "") + s;
  }
  function tick() {
    if (current && current.form) timerEl.textContent = fmt(Date.now() - current.startedAt);
  }
  setInterval(tick, 1000);

  // ---------------------------------------------------------------- keyboard
  function isTextField(el) {
    if (!el) return false;
    if (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
    return el.tagName === "INPUT" && !/^(radio|checkbox|button|submit|reset)$/.test(el.type);
  }
  document.addEventListener("keydown", function (e) {
    if (e.defaultPrevented || e.isComposing) return;
    if (helpDialog.open || skipDialog.open) return; // the dialogs handle their own keys
    var t = e.target;
    if (isTextField(t)) {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        submit();
      } else if (e.key === "Escape") {
        t.blur();
        if (current && current.form) current.form.querySelector(".task-title").focus();
      }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.shiftKey && /^Digit[1-9]$/.test(e.code)) {
      if (!current || !current.form) return;
      var flag = current.form.querySelector('input[name="flag"][data-n="' + e.code.slice(5) + '"]');
      if (flag) {
        flag.checked = !flag.checked;
        flag.dispatchEvent(new Event("change", { bubbles: true }));
        e.preventDefault();
      }
      return;
    }
    var key = e.key;
    var handled = true;
    if (key === "?") helpDialog.showModal();
    else if (key === "g" || key === "G") guidelines.open = !guidelines.open;
    else if (key === "z" || key === "Z") undo();
    else if (!current || !current.form) handled = false;
    else if (key === "Enter") {
      if (t.tagName === "BUTTON" || t.tagName === "A" || t.tagName === "SUMMARY") handled = false;
      else submit();
    } else if (key === "s" || key === "S") openSkip();
    else if (key === "r" || key === "R") current.form.querySelector("#rationale").focus();
    else handled = kindKey(key);
    if (handled) e.preventDefault();
  });

  function kindKey(key) {
    var form = current.form;
    var k = key.toLowerCase();
    if (current.kind === "pairwise") {
      var choices = { a: "A", b: "B", t: "tie", x: "both_bad" };
      if (choices[k]) return checkRadio(form, "choice", choices[k]) || true;
      if (/^[1-4]$/.test(key)) {
        if (!checkRadio(form, "strength", key)) say("Choose A or B first, then how much better (1–4).", true);
        return true;
      }
      if (k === "d") { toggleDiff(); return true; }
      return false;
    }
    var onCard = document.activeElement && document.activeElement.classList.contains("card");
    if (k === "j" || (key === "ArrowDown" && onCard)) { focusCard(1); return true; }
    if (k === "k" || (key === "ArrowUp" && onCard)) { focusCard(-1); return true; }
    if (current.kind === "ranking") {
      var card = activeCard() || cards().filter(function (c) { return !rankOf(form, c.dataset.response); })[0];
      if (!card) return false;
      if (/^[0-9]$/.test(key) || key === "Backspace" || key === "Delete") {
        var n = /^[0-9]$/.test(key) ? Number(key) : 0;
        if (n > cards().length) {
          say("There are only " + cards().length + " ranks.", true);
          return true;
        }
        setRank(card.dataset.response, n);
        if (n) {
          var next = cards().filter(function (c) { return !rankOf(form, c.dataset.response); })[0];
          (next || card).focus();
        } else card.focus();
        return true;
      }
      return false;
    }
    if (current.kind === "rating") {
      var rc = activeCard() || cards().filter(function (c) {
        return !c.querySelector('input[name^="thumb-"]:checked');
      })[0] || cards()[0];
      if (!rc) return false;
      if (k === "y" || k === "n") {
        checkRadio(form, "thumb-" + rc.dataset.response, k === "y" ? "up" : "down");
        var list = cards();
        var i = list.indexOf(rc);
        (list[i + 1] || rc).focus();
        return true;
      }
      if (/^[1-7]$/.test(key)) {
        checkRadio(form, "likert-" + rc.dataset.response, key);
        rc.focus();
        return true;
      }
      return false;
    }
    if (current.kind === "demonstration") {
      if (k === "w") { form.querySelector("#demo-text").focus(); return true; }
      var starts = form.querySelectorAll(".start-from");
      if (k === "e" && starts.length) { startFrom(starts[0].dataset.response); return true; }
      if (/^[1-9]$/.test(key) && starts[Number(key) - 1]) { startFrom(starts[Number(key) - 1].dataset.response); return true; }
    }
    return false;
  }

  // ---------------------------------------------------------------- start
  guidelines.open = load("guidelines-open", false);
  guidelines.addEventListener("toggle", function () { save("guidelines-open", guidelines.open); });
  pruneDrafts();
  setQueue(queue().map(function (it) { return it.held ? Object.assign({}, it, { held: false, tries: 0 }) : it; }));
  var first = slot.querySelector("form.task");
  mount(first || slot.firstElementChild);
  if (first && isQueued(first.dataset.assignment)) {
    // Answered before a reload but not yet acknowledged: send it, then show the next task.
    current = null;
    slot.replaceChildren(loadingNode());
    whenFlushed().then(function () { return fetchTask(false); }).then(function (t) {
      show(t);
      prefetch();
    });
    flush();
  } else {
    flush();
    prefetch();
  }
  // Heartbeat: keep the leases of the task on screen and the prefetched one while the page is
  // open, so a long task is not handed to another rater (leases still expire if the tab closes).
  var RENEW_MS = Math.max(15, Number(app.dataset.leaseSeconds || 600) / 3) * 1000;
  setInterval(function () {
    [current, prefetched].forEach(function (t) {
      if (!t || !t.id || !navigator.onLine) return;
      fetch("/api/assignments/" + t.id + "/renew/", {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken() },
      }).catch(function () { /* offline: the next beat tries again */ });
    });
  }, RENEW_MS);

  app.dataset.ready = "1"; // shortcuts are live (tests wait for this)
})();
