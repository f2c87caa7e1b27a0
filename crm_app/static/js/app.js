/* The CRM pages' behaviour, wired by data- attributes (the CSP allows no inline script).
 *
 * - <select data-autosubmit>: submits its form when the value changes (the
 *   list facets); without JavaScript the form's Filter button does the same.
 * - <form data-confirm="Question?">: asks before submitting (deletes); a
 *   refusal cancels the submission.
 * - <span data-bar-share="42.0">: sets the bar's width to that percentage
 *   (the dashboard's pipeline bars; an inline style attribute would need
 *   'unsafe-inline' in style-src).
 */
(function () {
  "use strict";

  document.addEventListener("change", function (event) {
    var select = event.target;
    if (select instanceof HTMLSelectElement && select.hasAttribute("data-autosubmit") && select.form) {
      select.form.requestSubmit ? select.form.requestSubmit() : select.form.submit();
    }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form instanceof HTMLFormElement && form.hasAttribute("data-confirm") &&
        !window.confirm(form.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });

  function drawBars() {
    document.querySelectorAll("[data-bar-share]").forEach(function (bar) {
      var share = parseFloat(bar.getAttribute("data-bar-share"));
      if (isFinite(share)) {
        bar.style.width = Math.max(0, Math.min(100, share)) + "%";
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawBars);
  } else {
    drawBars();
  }
})();
