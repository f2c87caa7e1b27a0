/* The CRM pages' behaviour, wired by data- attributes (the CSP allows no inline script).
 *
 * - <html class="js">: set first, so the stylesheet collapses the sidebar
 *   into a menu at phone width only when the menu button can open it.
 * - <button data-menu-toggle aria-controls="ID">: opens and closes the
 *   sidebar's menu at phone width (aria-expanded follows).
 * - <select data-autosubmit>: submits its form when the value changes (the
 *   list facets); without JavaScript the form's Filter button does the same.
 * - <form data-confirm="Question?">: asks before submitting (deletes); a
 *   refusal cancels the submission. Bulk deletes use the design system's
 *   dialog instead (data-rbac-confirm, rbac/rbac.js).
 * - <span data-bar-share="42.0">: sets the bar's width to that percentage
 *   (the dashboard's pipeline bars; an inline style attribute would need
 *   'unsafe-inline' in style-src).
 */
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  document.addEventListener("click", function (event) {
    var toggle = event.target instanceof Element ? event.target.closest("[data-menu-toggle]") : null;
    if (!toggle) { return; }
    var sidebar = toggle.closest(".sidebar");
    if (!sidebar) { return; }
    var open = sidebar.classList.toggle("is-open");
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
  });

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
