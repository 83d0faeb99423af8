/* OpenCAC review workbench: partial updates, evidence linking, type-ahead, keyboard shortcuts.
   Plain JavaScript, no build step, no third-party code. */
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var current = -1;

  function rows() { return Array.prototype.slice.call(document.querySelectorAll("li.sugg")); }
  function select(i, focus, relink) {
    var r = rows(); if (!r.length) return;
    current = Math.max(0, Math.min(i, r.length - 1));
    r.forEach(function (el, j) { el.classList.toggle("current", j === current); });
    if (focus !== false) { r[current].focus({ preventScroll: true }); r[current].scrollIntoView({ block: "nearest" }); }
    if (relink !== false) linkFromCode(r[current].dataset.id, false);
  }
  function currentRow() { var r = rows(); return r[current] || null; }

  /* --- evidence <-> codes ------------------------------------------------------------ */
  function clearLinks() {
    document.querySelectorAll("mark.active").forEach(function (m) { m.classList.remove("active"); });
    document.querySelectorAll("li.sugg.linked-hit").forEach(function (m) { m.classList.remove("linked-hit"); });
  }
  function linkFromCode(id, scroll) {
    clearLinks();
    var marks = Array.prototype.filter.call(document.querySelectorAll("mark[data-sugg]"), function (m) {
      return m.dataset.sugg.split(" ").indexOf(String(id)) >= 0; });
    marks.forEach(function (m) { m.classList.add("active"); });
    var row = document.getElementById("sugg-" + id);
    var out = document.getElementById("linked-codes");
    if (out && row) out.textContent = row.dataset.code + ": " + (marks.length ? marks.length + " evidence span(s) highlighted" : "no evidence in the note");
    if (scroll !== false && marks.length) marks[0].scrollIntoView({ block: "center" });
  }
  function linkFromMark(mark) {
    clearLinks(); mark.classList.add("active");
    var ids = mark.dataset.sugg.split(" "), codes = [];
    ids.forEach(function (id) {
      var row = document.getElementById("sugg-" + id);
      if (row) { row.classList.add("linked-hit"); codes.push(row.dataset.code); }
    });
    var out = document.getElementById("linked-codes");
    if (out) out.textContent = "Codes for this phrase: " + codes.join(", ");
    var first = document.getElementById("sugg-" + ids[0]);
    if (first) { first.scrollIntoView({ block: "nearest" }); var i = rows().indexOf(first); if (i >= 0) select(i, false, false); }
  }
  document.addEventListener("click", function (ev) {
    var t = ev.target;
    if (!(t instanceof Element)) return;
    var mark = t.closest("mark[data-sugg]");
    if (mark) { linkFromMark(mark); return; }
    var code = t.closest(".code-link");
    if (code) { var i = rows().indexOf(code.closest("li.sugg")); if (i >= 0) select(i, false, false); linkFromCode(code.dataset.sugg); return; }
    var help = t.closest("[data-help]");
    if (help) { toggleHelp(); return; }
    var opt = t.closest(".typeahead li[data-code]");
    if (opt) { pick(opt); }
  });
  document.addEventListener("keydown", function (ev) {
    var mark = ev.target instanceof Element && ev.target.closest("mark[data-sugg]");
    if (mark && (ev.key === "Enter" || ev.key === " ")) { ev.preventDefault(); linkFromMark(mark); }
  });

  /* --- partial updates ---------------------------------------------------------------- */
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-partial")) return;
    if (form.id === "finalize-form" && !window.confirm("Finalise this code set?")) { ev.preventDefault(); return; }
    ev.preventDefault();
    var keep = current;
    var body = new URLSearchParams(new FormData(form));
    fetch(form.getAttribute("action"), { method: "POST", body: body, credentials: "same-origin",
      headers: { "X-Partial": "1", "X-CSRF-Token": csrf, "Accept": "text/html" } })
      .then(function (resp) { return resp.text().then(function (html) { return { ok: resp.ok, status: resp.status, html: html }; }); })
      .then(function (r) {
        var target = document.getElementById("review");
        if (r.html.indexOf('id="review"') >= 0 && target) {
          var tmp = document.createElement("div"); tmp.innerHTML = r.html;
          target.replaceWith(tmp.firstElementChild);
          if (keep >= 0) select(keep, true);
          var alert = document.querySelector("#review [role=alert]");
          if (alert) alert.scrollIntoView({ block: "nearest" });
        } else { document.open(); document.write(r.html); document.close(); }
      })
      .catch(function () { form.submit(); });
  });

  /* --- type-ahead code search --------------------------------------------------------- */
  var timer = null;
  function listFor(input) { return document.getElementById(input.getAttribute("aria-controls")); }
  function pick(li) {
    var list = li.closest(".typeahead"); var input = document.querySelector('[aria-controls="' + list.id + '"]');
    input.value = li.dataset.code; list.hidden = true; input.setAttribute("aria-expanded", "false"); input.focus();
  }
  document.addEventListener("input", function (ev) {
    var input = ev.target;
    if (!(input instanceof HTMLInputElement) || !input.hasAttribute("data-typeahead")) return;
    var list = listFor(input); if (!list) return;
    clearTimeout(timer);
    var q = input.value.trim();
    if (q.length < 2) { list.hidden = true; return; }
    timer = setTimeout(function () {
      var url = "/api/v1/codes/search?limit=12&q=" + encodeURIComponent(q);
      if (input.dataset.typeahead) url += "&system=" + encodeURIComponent(input.dataset.typeahead);
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : []; })
        .then(function (hits) {
          list.innerHTML = "";
          hits.forEach(function (h, i) {
            var li = document.createElement("li");
            li.setAttribute("role", "option"); li.id = list.id + "-" + i; li.dataset.code = h.code;
            li.textContent = h.code + " — " + h.description + (h.billable ? "" : " (not billable)");
            list.appendChild(li);
          });
          list.hidden = hits.length === 0; input.setAttribute("aria-expanded", hits.length ? "true" : "false");
        });
    }, 200);
  });
  document.addEventListener("keydown", function (ev) {
    var input = ev.target;
    if (!(input instanceof HTMLInputElement) || !input.hasAttribute("data-typeahead")) return;
    var list = listFor(input); if (!list || list.hidden) return;
    var items = Array.prototype.slice.call(list.children);
    var at = items.findIndex(function (li) { return li.getAttribute("aria-selected") === "true"; });
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      at = ev.key === "ArrowDown" ? Math.min(at + 1, items.length - 1) : Math.max(at - 1, 0);
      items.forEach(function (li, j) { li.setAttribute("aria-selected", j === at ? "true" : "false"); });
      input.setAttribute("aria-activedescendant", items[at].id);
    } else if (ev.key === "Enter" && at >= 0) { ev.preventDefault(); pick(items[at]); }
    else if (ev.key === "Escape") { list.hidden = true; }
  }, true);

  /* --- keyboard shortcuts ------------------------------------------------------------- */
  function toggleHelp() { var d = document.getElementById("help"); if (!d) return; if (d.open) d.close(); else d.showModal(); }
  /* proposed fixes of the rules layer: e focuses the next open one; a / r act on the focused one */
  var fixAt = -1;
  function fixes() { return Array.prototype.slice.call(document.querySelectorAll("li.fix-open")); }
  function focusedFix() { var a = document.activeElement; return a instanceof Element ? a.closest("li.fix-open") : null; }
  function nextFix() {
    var f = fixes(); if (!f.length) return;
    var at = f.indexOf(focusedFix());
    fixAt = (at >= 0 ? at + 1 : fixAt + 1) % f.length;
    f[fixAt].focus(); f[fixAt].scrollIntoView({ block: "nearest" });
  }
  function openBox(cls) {
    var row = currentRow(); if (!row) return;
    var box = row.querySelector("details." + cls); if (!box) return;
    box.open = true; var f = box.querySelector("input:not([type=hidden]), select"); if (f) f.focus();
  }
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var t = ev.target;
    var typing = t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement;
    if (typing) { if (ev.key === "Escape") t.blur(); return; }
    if (!document.getElementById("review") && ev.key !== "?") return;
    switch (ev.key) {
      case "j": select(current + 1); break;
      case "k": select(current < 0 ? 0 : current - 1); break;
      case "a": {
        var fx = focusedFix(); var row = fx || currentRow();
        var b = row && row.querySelector(fx ? "button.apply-fix" : "button.accept"); if (b) b.click(); break; }
      case "r": {
        var fr = focusedFix();
        if (fr) { var box = fr.querySelector("details.dismiss-box"); if (box) { box.open = true; var i = box.querySelector("input[name=reason]"); if (i) i.focus(); } }
        else openBox("reject-box");
        break; }
      case "e": nextFix(); break;
      case "m": openBox("modify-box"); break;
      case "/": { var s = document.getElementById("add-code"); if (s) s.focus(); break; }
      case "f": { var f = document.getElementById("finalize-form"); if (f) f.requestSubmit(); break; }
      case "?": toggleHelp(); break;
      default: return;
    }
    ev.preventDefault();
  });
  document.addEventListener("DOMContentLoaded", function () { if (rows().length) select(0, false); });
})();
