/* The labelling page: active-time counter, keyboard shortcuts and the guidelines panel.
 *
 * The fragment #label-panel is replaced by htmx after every submit or skip, so everything here is
 * delegated from `document` and re-reads the DOM on use; nothing holds on to old elements.
 *
 * Shortcuts (ignored while typing in a text field, a textarea or a select, except Ctrl/Cmd+Enter):
 *   1 left clearly, 2 left slightly, 3 right slightly, 4 right clearly, 0 can't decide,
 *   r rationale, g guidelines, Esc leave the field (or close the guidelines), Ctrl/Cmd+Enter submit.
 */
(function () {
  "use strict";

  if (window.synprefLabel) return; // loaded once per page; fragments never reload it
  window.synprefLabel = { loadedAt: Date.now() };

  // --- active time: counts only while the tab is visible --------------------------------------
  var timer = { assignment: null, activeMs: 0, since: null };

  function labelForm() { return document.getElementById("label-form"); }

  function currentAssignment() {
    var input = document.querySelector("#label-form input[name='assignment']");
    return input ? input.value : null;
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

  // A new pair restarts the count; the same pair re-rendered with errors keeps counting.
  function syncTimer() {
    var id = currentAssignment();
    if (id !== timer.assignment) {
      var swapped = timer.assignment !== null;
      timer = { assignment: id, activeMs: 0, since: null };
      resume();
      // htmx gives focus back to the element with the same id after a swap; on a new pair that
      // would leave the cursor in the rationale, where the 1-4 keys type digits instead.
      var active = document.activeElement;
      if (swapped && active && active !== document.body && typeof active.blur === "function") active.blur();
    }
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
    if (event.target && event.target.id === "label-form") writeTime();
  }, true);
  document.addEventListener("htmx:configRequest", function (event) {
    if (event.detail.elt && event.detail.elt.id === "label-form") {
      event.detail.parameters["time_spent_ms"] = String(elapsedMs());
    }
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
    if (panelOpen()) { closeGuidelines(); return; }
    var button = guidelinesButton();
    if (button) button.click(); // htmx loads the fragment; the panel opens on beforeRequest
  }

  // The button toggles: a click while the panel is open closes it instead of loading again.
  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    if (!target) return;
    if (target.closest("[data-close-guidelines]")) { closeGuidelines(); return; }
    if (target.closest("#guidelines-button") && panelOpen()) {
      event.preventDefault();
      event.stopPropagation();
      closeGuidelines();
    }
  }, true);
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (event.detail.elt && event.detail.elt.id === "guidelines-button") openGuidelines();
  });

  // --- keyboard shortcuts ---------------------------------------------------------------------
  var NOT_TYPING_INPUTS = { radio: 1, checkbox: 1, button: 1, submit: 1, reset: 1, hidden: 1, file: 1 };

  function isTyping(el) {
    if (!el || el === document.body) return false;
    if (el.isContentEditable) return true;
    var tag = el.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT") return true;
    return tag === "INPUT" && !NOT_TYPING_INPUTS[(el.type || "").toLowerCase()];
  }

  function choosePreference(key) {
    var form = labelForm();
    if (!form) return false;
    var radio = form.querySelector("input[name='preference'][data-key='" + key + "']");
    if (!radio) return false;
    radio.checked = true;
    radio.dispatchEvent(new Event("change", { bubbles: true }));
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

    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      if (labelForm()) {
        event.preventDefault();
        submitLabel();
      }
      return;
    }
    // Enter in a one-line field (the guideline) would submit the label by accident: only
    // Ctrl/Cmd+Enter or the button submit.
    if (event.key === "Enter" && active && active.tagName === "INPUT" && isTyping(active) &&
        labelForm() && labelForm().contains(active)) {
      event.preventDefault();
      return;
    }
    if (event.key === "Escape") {
      if (active && active !== document.body && labelForm() && labelForm().contains(active)) {
        event.preventDefault();
        active.blur();
      } else if (panelOpen()) {
        event.preventDefault();
        closeGuidelines();
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || isTyping(active)) return;

    if (event.key === "g" || event.key === "G") {
      event.preventDefault();
      toggleGuidelines();
    } else if (event.key === "r" || event.key === "R") {
      var rationale = document.querySelector("#label-form textarea[name='rationale']");
      if (rationale) {
        event.preventDefault();
        rationale.focus();
      }
    } else if (/^[0-4]$/.test(event.key)) {
      if (choosePreference(event.key)) event.preventDefault();
    }
  });

  // --- after each swap of the fragment ----------------------------------------------------------
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail.target && event.detail.target.id === "label-panel") syncTimer();
  });
  // htmx swaps #label-panel by outerHTML, so the event target is the new element; fall back to a
  // check on every settle in case the swap target differs.
  document.addEventListener("htmx:load", syncTimer);

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", syncTimer);
  else syncTimer();
})();
