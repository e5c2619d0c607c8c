// Progressive enhancement only: every page works without this file.
// A form's submit button is disabled after the first submit, so a double click sends one request.
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (!(form instanceof HTMLFormElement) || form.method.toLowerCase() !== "post") { return; }
  window.setTimeout(function () {
    form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
  }, 0);
  // Downloads (generate codes, import) leave the page in place: enable the buttons again shortly after.
  if (form.hasAttribute("data-download")) {
    window.setTimeout(function () {
      form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = false; });
    }, 3000);
  }
});
