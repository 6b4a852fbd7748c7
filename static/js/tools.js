// Annotator tools: "Use the text I selected" copies the page selection into the passage box.
// Loaded by templates/annotation/tools/panels.html; safe to load again after an htmx swap.
(function () {
  "use strict";
  if (window.synprefToolsLoaded) return;
  window.synprefToolsLoaded = true;
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-use-selection]");
    if (!button) return;
    var form = button.closest("form");
    var box = form && form.querySelector("textarea[name='text']");
    var selected = window.getSelection ? String(window.getSelection()).trim() : "";
    if (box && selected) {
      box.value = selected.slice(0, 5000);
      box.focus();
    }
  });
})();
