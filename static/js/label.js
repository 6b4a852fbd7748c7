/* The labelling page: active-time counter, keyboard, drafts, tool tabs and the guidelines panel.
 *
 * The fragment #label-panel is replaced by htmx after every submit or skip, so everything here is
 * delegated from `document` and re-reads the DOM on use; nothing holds on to old elements.
 *
 * Keys (ignored while typing in a text field, a textarea or a select, except Ctrl/Cmd+Enter and Esc):
 *   1 left clearly, 2 left slightly, 3 right slightly, 4 right clearly, 0 can't decide;
 *   t, o, c, d then the key shown beside a choice: task category, objectivity, controversiality,
 *   desired attribute (toggles); i guideline, r rationale; s k a e tool tabs; g guidelines;
 *   ? key help; Esc leaves a field, cancels a key path or closes a panel; Ctrl/Cmd+Enter submits.
 *
 * Drafts: every change to the form is kept in localStorage under the assignment (or, when editing,
 * the label), so a reload or a lost connection loses nothing; the draft is dropped once the server
 * has the label (a saved edit's, by drop_draft.js on the queue page the edit returns to).
 */
(function () {
  "use strict";

  if (window.synprefLabel) return; // loaded once per page; fragments never reload it
  window.synprefLabel = { loadedAt: Date.now() };

  var DRAFT_PREFIX = "synpref:draft:";
  var DRAFT_MAX_AGE_MS = 7 * 24 * 3600 * 1000;
  var TOOL_KEY = "synpref:tools-tab";

  function labelForm() { return document.getElementById("label-form"); }
  function labelPanel() { return document.getElementById("label-panel"); }

  function store() {
    try { return window.localStorage; } catch (e) { return null; } // disabled storage: no drafts, no memory
  }

  // --- active time: counts only while the tab is visible --------------------------------------
  var timer = { assignment: null, activeMs: 0, since: null };

  function currentAssignment() {
    var form = labelForm();
    return form ? form.getAttribute("data-draft-key") : null;
  }

  function isVisible() { return document.visibilityState !== "hidden"; }

  function pause() {
    if (timer.since !== null) {
      timer.activeMs += performance.now() - timer.since;
      timer.since = null;
    }
  }

  function resume() {
    if (timer.since === null && isVisible() && timer.assignment !== null) timer.since = performance.now();
  }

  function elapsedMs() {
    var running = timer.since !== null ? performance.now() - timer.since : 0;
    return Math.max(0, Math.round(timer.activeMs + running));
  }

  function writeTime() {
    var input = document.querySelector("#label-form input[name='time_spent_ms']");
    if (input) input.value = String(elapsedMs());
  }

  window.synprefLabel.elapsedMs = elapsedMs;

  document.addEventListener("visibilitychange", function () {
    if (isVisible()) resume(); else pause();
  });
  window.setInterval(writeTime, 1000);

  // Written just before the values are collected (capture phase runs before htmx's handler).
  document.addEventListener("submit", function (event) {
    if (event.target && event.target.id === "label-form") { writeTime(); saveDraft(); }
  }, true);
  document.addEventListener("htmx:configRequest", function (event) {
    if (event.detail.elt && event.detail.elt.id === "label-form") {
      event.detail.parameters["time_spent_ms"] = String(elapsedMs());
    }
  });

  // --- drafts ------------------------------------------------------------------------------------
  var DRAFT_FIELDS = ["preference", "task_category", "objectivity", "controversiality", "guideline", "rationale"];

  function draftKey(form) {
    var key = form && form.getAttribute("data-draft-key");
    return key ? DRAFT_PREFIX + key : null;
  }

  function readForm(form) {
    var data = {};
    DRAFT_FIELDS.forEach(function (name) {
      var el = form.elements[name];
      if (!el) return;
      data[name] = el.value !== undefined ? el.value : "";
    });
    data.desired_attributes = Array.prototype.map.call(
      form.querySelectorAll("input[name='desired_attributes']:checked"), function (box) { return box.value; });
    return data;
  }

  function isEmpty(data) {
    return !DRAFT_FIELDS.some(function (name) { return data[name]; }) && !data.desired_attributes.length;
  }

  function saveDraft() {
    var form = labelForm(), key = draftKey(form), s = store();
    if (!form || !key || !s) return;
    var data = readForm(form);
    try {
      if (isEmpty(data)) s.removeItem(key);
      else s.setItem(key, JSON.stringify({ at: Date.now(), data: data }));
    } catch (e) { /* storage full: the form still works */ }
  }

  function setValue(form, name, value) {
    var el = form.elements[name];
    if (!el || value === undefined || value === null) return;
    if (el instanceof RadioNodeList || (el.length !== undefined && el.tagName !== "SELECT")) {
      Array.prototype.forEach.call(el, function (radio) { radio.checked = radio.value === value; });
    } else {
      el.value = value;
    }
  }

  // Put a saved draft back into a freshly served form (never over values the server sent back with
  // errors: those are what was just posted).
  function restoreDraft() {
    var form = labelForm(), key = draftKey(form), s = store();
    if (!form || !key || !s || document.getElementById("label-errors")) return;
    var raw = s.getItem(key);
    if (!raw) return;
    var draft;
    try { draft = JSON.parse(raw); } catch (e) { s.removeItem(key); return; }
    if (!draft || !draft.data) return;
    var data = draft.data;
    DRAFT_FIELDS.forEach(function (name) { if (data[name]) setValue(form, name, data[name]); });
    if (Array.isArray(data.desired_attributes)) {
      form.querySelectorAll("input[name='desired_attributes']").forEach(function (box) {
        box.checked = data.desired_attributes.indexOf(box.value) !== -1;
      });
    }
    var status = document.getElementById("draft-status");
    if (status) {
      status.hidden = false;
      status.textContent = "Your unsent draft of this label was restored.";
    }
  }

  function dropDraft(key) {
    var s = store();
    if (s && key) s.removeItem(DRAFT_PREFIX + key);
  }

  function pruneDrafts() {
    var s = store();
    if (!s) return;
    for (var i = s.length - 1; i >= 0; i--) {
      var key = s.key(i);
      if (!key || key.indexOf(DRAFT_PREFIX) !== 0) continue;
      try {
        var draft = JSON.parse(s.getItem(key));
        if (!draft || Date.now() - draft.at > DRAFT_MAX_AGE_MS) s.removeItem(key);
      } catch (e) { s.removeItem(key); }
    }
  }

  document.addEventListener("input", function (event) {
    if (event.target && event.target.form && event.target.form.id === "label-form") saveDraft();
  });
  document.addEventListener("change", function (event) {
    if (event.target && event.target.form && event.target.form.id === "label-form") saveDraft();
  });

  // A request that never reached the server: say so beside the button, keep everything.
  function showOffline(show) {
    var box = document.getElementById("label-offline");
    if (box) box.hidden = !show;
  }
  document.addEventListener("htmx:sendError", function (event) {
    if (event.detail.elt && event.detail.elt.id === "label-form") { saveDraft(); showOffline(true); }
  });
  document.addEventListener("htmx:responseError", function (event) {
    if (event.detail.elt && event.detail.elt.id === "label-form") { saveDraft(); showOffline(true); }
  });

  // --- guidelines side panel ------------------------------------------------------------------
  function panel() { return document.getElementById("guidelines-panel"); }
  function guidelinesButton() { return document.getElementById("guidelines-button"); }
  function panelOpen() { var p = panel(); return !!p && !p.hidden; }

  function openGuidelines() {
    var p = panel();
    if (!p) return;
    p.hidden = false;
    document.body.classList.add("guidelines-open");
    var button = guidelinesButton();
    if (button) button.setAttribute("aria-expanded", "true");
  }

  function closeGuidelines() {
    var p = panel();
    if (!p) return;
    p.hidden = true;
    document.body.classList.remove("guidelines-open");
    var button = guidelinesButton();
    if (button) button.setAttribute("aria-expanded", "false");
  }

  function toggleGuidelines() {
    var button = guidelinesButton();
    if (button) button.click(); // the click handler below opens (and loads) or closes the panel
    else if (panelOpen()) closeGuidelines();
  }

  // --- key help overlay -------------------------------------------------------------------------
  function keysHelp() { return document.getElementById("keys-help"); }
  function keysOpen() { var k = keysHelp(); return !!k && !k.hidden; }
  function setKeysHelp(open) {
    var k = keysHelp();
    if (!k) return;
    k.hidden = !open;
    var button = document.getElementById("keys-button");
    if (button) button.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) { var close = k.querySelector("[data-close-keys]"); if (close) close.focus(); }
    else if (button && k.contains(document.activeElement)) button.focus();
  }

  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    if (!target) return;
    if (target.closest("[data-close-guidelines]")) { closeGuidelines(); return; }
    var guidelines = target.closest("#guidelines-button");
    if (guidelines) {
      // Handled here rather than by the link's own hx-get, so a click that comes before htmx has
      // processed the page (first_visit.js opens the guidelines on DOMContentLoaded) still opens
      // the panel instead of leaving the page.
      if (!window.htmx) return; // no htmx at all: the link goes to the guidelines page
      event.preventDefault();
      event.stopPropagation();
      if (panelOpen()) { closeGuidelines(); return; }
      openGuidelines();
      window.htmx.ajax("GET", guidelines.getAttribute("href"), { target: "#guidelines-body", swap: "innerHTML" });
      return;
    }
    if (target.closest("#keys-button")) { setKeysHelp(!keysOpen()); return; }
    if (target.closest("[data-close-keys]") || target.id === "keys-help") { setKeysHelp(false); return; }
    var tab = target.closest(".tool-tab");
    if (tab) { toggleTool(tab.getAttribute("data-tool")); }
  }, true);

  // --- tool tabs: one open at a time, fetched when first opened, remembered ----------------------
  function openTool(name, remember) {
    var found = false;
    document.querySelectorAll(".tool-tab").forEach(function (tab) {
      var on = tab.getAttribute("data-tool") === name;
      found = found || on;
      tab.setAttribute("aria-selected", on ? "true" : "false");
    });
    document.querySelectorAll(".tool-pane").forEach(function (pane) {
      var on = pane.getAttribute("data-tool") === name;
      pane.hidden = !on;
      if (on && window.htmx) {
        var loader = pane.querySelector("[hx-trigger~='tool-open']");
        if (loader) window.htmx.trigger(loader, "tool-open");
      }
    });
    if (remember) {
      var s = store();
      if (s) { try { s.setItem(TOOL_KEY, found ? name : ""); } catch (e) { /* ignore */ } }
    }
  }

  function toggleTool(name) {
    var tab = document.querySelector(".tool-tab[data-tool='" + name + "']");
    if (!tab) return false;
    openTool(tab.getAttribute("aria-selected") === "true" ? "" : name, true);
    return true;
  }

  function reopenRememberedTool() {
    var s = store();
    var name = s ? s.getItem(TOOL_KEY) : "";
    if (name) openTool(name, false);
  }

  // --- keyboard -------------------------------------------------------------------------------
  var NOT_TYPING_INPUTS = { radio: 1, checkbox: 1, button: 1, submit: 1, reset: 1, hidden: 1, file: 1 };
  var MODES = { t: "task_category", o: "objectivity", c: "controversiality", d: "desired_attributes" };
  var MODE_NAMES = {
    task_category: "Task category", objectivity: "Objectivity",
    controversiality: "Controversiality", desired_attributes: "Desired attributes",
  };
  var TOOL_KEYS = { s: "search", k: "code", a: "ai", e: "evidence" };
  var mode = null;

  function isTyping(el) {
    if (!el || el === document.body) return false;
    if (el.isContentEditable) return true;
    var tag = el.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT") return true;
    return tag === "INPUT" && !NOT_TYPING_INPUTS[(el.type || "").toLowerCase()];
  }

  function fieldBox(name) {
    var form = labelForm();
    return form ? form.querySelector("[data-field='" + name + "']") : null;
  }

  function setMode(name) {
    if (mode) { var old = fieldBox(mode); if (old) old.classList.remove("key-mode"); }
    mode = name;
    var status = document.getElementById("key-mode-status");
    if (!name) { if (status) status.textContent = ""; return; }
    var box = fieldBox(name);
    if (box) {
      box.classList.add("key-mode");
      if (box.scrollIntoView) box.scrollIntoView({ block: "nearest" });
    }
    if (status) {
      status.textContent = MODE_NAMES[name] + ": press the key beside a choice" +
        (name === "desired_attributes" ? " to toggle it" : "") + " (Esc cancels).";
    }
  }

  function chooseByKey(name, key) {
    var form = labelForm();
    if (!form) return false;
    var input = form.querySelector("input[name='" + name + "'][data-key='" + key + "']");
    if (!input) return false;
    input.checked = input.type === "checkbox" ? !input.checked : true;
    input.dispatchEvent(new Event("change", { bubbles: true }));
    return true;
  }

  function focusField(selector) {
    var el = document.querySelector(selector);
    if (!el) return false;
    el.focus();
    return true;
  }

  function submitLabel() {
    var form = labelForm();
    if (!form || form.classList.contains("htmx-request")) return; // one request at a time
    writeTime();
    if (typeof form.requestSubmit === "function") form.requestSubmit();
    else form.dispatchEvent(new Event("submit", { bubbles: true, cancelable: true }));
  }

  document.addEventListener("keydown", function (event) {
    if (event.isComposing || event.defaultPrevented) return;
    var active = document.activeElement;
    var form = labelForm();

    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      if (form) {
        event.preventDefault();
        setMode(null);
        submitLabel();
      }
      return;
    }
    // Enter in a one-line field (the guideline) would submit the label by accident: only
    // Ctrl/Cmd+Enter or the button submit.
    if (event.key === "Enter" && active && active.tagName === "INPUT" && isTyping(active) && form && form.contains(active)) {
      event.preventDefault();
      return;
    }
    if (event.key === "Escape") {
      if (keysOpen()) { event.preventDefault(); setKeysHelp(false); }
      else if (mode) { event.preventDefault(); setMode(null); }
      else if (active && active !== document.body && form && form.contains(active)) { event.preventDefault(); active.blur(); }
      else if (panelOpen()) { event.preventDefault(); closeGuidelines(); }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || isTyping(active)) return;
    if (event.key === "?") { event.preventDefault(); setKeysHelp(!keysOpen()); return; }
    if (keysOpen()) return;

    var key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    if (mode) {
      // The key after t/o/c/d picks in that field; a key that names no choice just ends the path.
      var field = mode;
      setMode(null);
      if (chooseByKey(field, key)) event.preventDefault();
      return;
    }
    if (!form && key !== "g") return;
    if (MODES[key] && fieldBox(MODES[key])) {
      event.preventDefault();
      var box = fieldBox(MODES[key]);
      var select = box.querySelector("select");
      if (select) select.focus(); // a long taxonomy is a select: type to pick
      else setMode(MODES[key]);
    } else if (/^[0-4]$/.test(key)) {
      if (chooseByKey("preference", key)) event.preventDefault();
    } else if (key === "r") {
      if (focusField("#label-form textarea[name='rationale']")) event.preventDefault();
    } else if (key === "i") {
      if (focusField("#label-form input[name='guideline']")) event.preventDefault();
    } else if (key === "g") {
      event.preventDefault();
      toggleGuidelines();
    } else if (TOOL_KEYS[key]) {
      if (toggleTool(TOOL_KEYS[key])) event.preventDefault();
    }
  });

  // --- after each swap of the fragment ----------------------------------------------------------
  function focusFirstError() {
    var form = labelForm();
    if (!form) return false;
    var box = form.querySelector(".has-error");
    if (!box) return false;
    var target = box.querySelector("input:checked") ||
      box.querySelector("input:not([type='hidden']), select, textarea");
    var summary = document.getElementById("label-errors");
    if (summary && summary.scrollIntoView) summary.scrollIntoView({ block: "nearest" });
    if (target) {
      target.focus({ preventScroll: true });
      var shown = target.closest("label") || target;
      if (shown.scrollIntoView) shown.scrollIntoView({ block: "nearest" });
    }
    return true;
  }

  function onPanel() {
    var id = currentAssignment();
    setMode(null);
    showOffline(false);
    var side = document.querySelector(".label-side");
    if (id !== timer.assignment) {
      var previous = timer.assignment;
      var swapped = previous !== null;
      timer = { assignment: id, activeMs: 0, since: null };
      resume();
      var p = labelPanel();
      // The previous label reached the server: its draft is no longer needed.
      if (swapped && p && p.getAttribute("data-saved") === "1") dropDraft(previous);
      if (swapped) {
        // A new pair: back to the top, and nothing focused, so the digit keys choose again.
        window.scrollTo(0, 0);
        if (side) side.scrollTop = 0;
        var active = document.activeElement;
        if (active && active !== document.body && typeof active.blur === "function") active.blur();
      }
      restoreDraft();
      reopenRememberedTool();
    }
    focusFirstError();
  }

  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail.target && event.detail.target.id === "label-panel") onPanel();
  });
  // htmx swaps #label-panel by outerHTML, so the event target is the new element.
  document.addEventListener("htmx:load", function (event) {
    if (event.detail && event.detail.elt && event.detail.elt.id === "label-panel") onPanel();
  });

  function start() {
    pruneDrafts();
    onPanel();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
