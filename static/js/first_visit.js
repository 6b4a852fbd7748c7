/* First visit to a project's labelling page: open the guidelines once (the server decides and
 * remembers; it marks the Guidelines button with data-first-visit only that one time). */
(function () {
  "use strict";
  function openOnce() {
    var button = document.querySelector("#guidelines-button[data-first-visit]");
    if (!button) return;
    button.removeAttribute("data-first-visit");
    button.click();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", openOnce);
  else openOnce();
})();
