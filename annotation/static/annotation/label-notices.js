/* Notices for answers the labeling page could not store: the server refused them (a 4xx, final)
 * or did not take them after several tries (a 5xx, no connection; kept, with Retry and Discard).
 *
 * A notice says which task (its number and the start of the prompt), what the rater answered and
 * why it was not stored. All of it is untrusted text (model output in the prompt, the rater's own
 * words, the server's message quoting them), so this file only ever sets textContent; characters
 * that cannot be stored are shown as marked chips ("NUL", "U+DC00"), so the rater can find the one
 * at fault.
 *
 * Used by label.js: ``describe`` runs at submit time (the summary travels with the queued answer,
 * so it survives a reload), ``render`` draws the list.
 */
(function () {
  "use strict";

  var PROMPT_CHARS = 160;
  var TEXT_CHARS = 400;
  // What the server refuses: a NUL, or a lone surrogate (a high one not followed by a low one, or
  // a low one not preceded by a high one).
  var UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

  function cut(text, max) {
    var s = String(text == null ? "" : text);
    if (!max || s.length <= max) return s;
    s = s.slice(0, max - 1);
    if (/[\uD800-\uDBFF]$/.test(s)) s = s.slice(0, -1); // do not split a pair
    return s + "…";
  }
  // Text nodes, with each character that cannot be stored as a visible chip.
  function appendText(node, text) {
    var s = String(text);
    var at = 0;
    s.replace(UNSTORABLE, function (ch, offset) {
      node.appendChild(document.createTextNode(s.slice(at, offset)));
      var code = ch.charCodeAt(0);
      var mark = el("mark", "bad-char", code === 0 ? "NUL" : "U+" + code.toString(16).toUpperCase());
      mark.title = code === 0 ? "An invisible NUL character (U+0000)" : "A lone surrogate, not a character";
      node.appendChild(mark);
      at = offset + ch.length;
      return ch;
    });
    node.appendChild(document.createTextNode(s.slice(at)));
    return node;
  }
  function squash(text) { return String(text || "").replace(/\s+/g, " ").trim(); }

  // The words of a radio's label, without its shortcut key.
  function labelText(form, name, value) {
    var input = form.querySelector('input[name="' + name + '"][value="' + value + '"]');
    var label = input && input.closest("label");
    if (!label) return String(value);
    var copy = label.cloneNode(true);
    copy.querySelectorAll("kbd, input").forEach(function (el) { el.remove(); });
    return squash(copy.textContent);
  }
  function responseLabel(form, rid) {
    var card = form.querySelector('.card[data-response="' + rid + '"], .resp[data-response="' + rid + '"]');
    return card && card.dataset.label ? card.dataset.label : "#" + rid;
  }

  function promptOf(form) {
    var turns = form.querySelectorAll(".conversation .turn");
    var last = null;
    Array.prototype.forEach.call(turns, function (t) {
      if (t.classList.contains("turn-user")) last = t;
    });
    last = last || turns[turns.length - 1];
    var md = last && last.querySelector(".md");
    return md ? cut(squash(md.textContent), PROMPT_CHARS) : "";
  }

  function answerOf(form, kind, body) {
    if (kind === "pairwise") {
      var choice = labelText(form, "choice", body.choice);
      return body.strength ? choice + " (" + labelText(form, "strength", body.strength).toLowerCase() + ")" : choice;
    }
    if (kind === "ranking") {
      return (body.ranking || []).map(function (group) {
        return group.map(function (rid) { return responseLabel(form, rid); }).join(" = ");
      }).join(" > ") + "  (best first)";
    }
    if (kind === "rating") {
      return (body.ratings || []).map(function (r) {
        return responseLabel(form, r.response) + ": thumbs " + (r.thumb || "?") + (r.likert ? ", " + r.likert + "/7" : "");
      }).join(" · ");
    }
    if (kind === "demonstration") {
      return body.based_on ? "Edited candidate " + responseLabel(form, body.based_on) : "Written from scratch";
    }
    return "";
  }

  /* The summary of one answer, made when it is queued: plain strings only. */
  function describe(form, kind, body) {
    var title = form.querySelector(".task-title");
    var rows = [["Prompt", promptOf(form)], ["Your answer", answerOf(form, kind, body)]];
    if (kind === "demonstration") rows.push(["Your text", cut(body.text, TEXT_CHARS)]);
    if (body.flags && body.flags.length) rows.push(["Flags", body.flags.join(", ")]);
    if (body.rationale) rows.push(["Rationale", cut(body.rationale, TEXT_CHARS)]);
    return { title: title ? squash(title.textContent) : "a task", rows: rows };
  }
  function describeSkip(form, reason) {
    var title = form.querySelector(".task-title");
    return {
      title: title ? squash(title.textContent) : "a task",
      rows: [["Prompt", promptOf(form)], ["Skip reason", cut(reason, TEXT_CHARS)]],
    };
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function button(text, action, key, primary) {
    var b = el("button", primary ? "primary" : "", text);
    b.type = "button";
    b.dataset.action = action;
    b.dataset.key = key;
    return b;
  }

  var WHAT = { submit: "your answer to", revise: "your change to", skip: "your skip of" };

  /* One notice: {key, type, shown, reason, held, tries, final}. */
  function noticeNode(n) {
    var shown = n.shown || { title: "task #" + (n.task || "?"), rows: [] };
    var box = el("article", "notice" + (n.held ? " held" : " refused"));
    box.dataset.key = n.key;
    box.setAttribute("aria-label", (n.held ? "Not sent: " : "Not saved: ") + shown.title);
    box.appendChild(el("h3", "", (n.held ? "Not sent yet: " : "Not saved: ") + (WHAT[n.type] || WHAT.submit) + " " + shown.title));
    var why = el("p", "notice-reason");
    why.appendChild(el("strong", "", n.held ? "Tried " + n.tries + " times: " : "The server refused it: "));
    appendText(why, cut(n.reason, TEXT_CHARS));
    box.appendChild(why);
    var dl = el("dl");
    shown.rows.forEach(function (row) {
      if (!row[1]) return;
      dl.appendChild(el("dt", "", row[0]));
      dl.appendChild(appendText(el("dd"), row[1]));
    });
    if (dl.childNodes.length) box.appendChild(dl);
    box.appendChild(el("p", "hint", n.held ?
      "It is kept in this browser and sent when you retry; nothing is lost unless you discard it." :
      n.final ? "Nothing was stored." :
      "Nothing was stored. The task comes back so you can answer it again."));
    var actions = el("div", "notice-actions");
    if (n.held) {
      actions.appendChild(button("Retry now", "retry", n.key, true));
      actions.appendChild(button("Discard this answer", "discard", n.key, false));
    } else {
      actions.appendChild(button("Dismiss", "dismiss", n.key, false));
    }
    box.appendChild(actions);
    return box;
  }

  function render(container, notices) {
    container.replaceChildren.apply(container, notices.map(noticeNode));
    container.hidden = !notices.length;
  }

  window.prefloopNotices = { describe: describe, describeSkip: describeSkip, render: render };
})();
