/* The queue page after a label edit was saved: drop that edit's localStorage draft (kept by label.js
 * under "synpref:draft:" + the form's data-draft-key while the edit was typed), so reopening the
 * label shows what the server has. The server names the draft once, in [data-drop-draft]. */
(function () {
  "use strict";
  var DRAFT_PREFIX = "synpref:draft:"; // as in label.js
  function drop() {
    var s;
    try { s = window.localStorage; } catch (e) { return; } // disabled storage: nothing was kept
    if (!s) return;
    document.querySelectorAll("[data-drop-draft]").forEach(function (el) {
      var key = el.getAttribute("data-drop-draft");
      if (key) s.removeItem(DRAFT_PREFIX + key);
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drop);
  else drop();
})();
