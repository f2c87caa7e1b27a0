/* The role matrix's None / View / Full shortcuts, done in the browser.
 *
 * Without JavaScript the same buttons submit the form with
 * name="shortcut" and the server fills the cells the same way
 * (settings/role_matrix.py apply_shortcut): View grants "view" on all
 * records, Full every action, None nothing; conditions and denies of those
 * cells are cleared. The whole-role shortcut ("*") covers every business
 * module but never the administration table (data-admin), which only its
 * own shortcut changes.
 * After a preview, any change hides the Save buttons: the preview no longer
 * describes what would be saved.
 */
(function () {
  "use strict";

  function cells(form, module) {
    var selector = module === "*" ? "table.rbac-matrix:not([data-admin])" :
      'table.rbac-matrix[data-module="' + (window.CSS && CSS.escape ? CSS.escape(module) : module) + '"]';
    return form.querySelectorAll(selector + " td.rbac-cell[data-cell]");
  }

  function clearConditions(form, cell) {
    var name = "cond__" + cell.getAttribute("data-cell");
    form.querySelectorAll("[data-rbac-cond-cell]").forEach(function (group) {
      if (group.getAttribute("data-rbac-cond-cell") !== name) { return; }
      group.querySelectorAll(".rbac-clause:not([data-rbac-blank]), .rbac-cond-kept").forEach(function (el) {
        el.remove();
      });
      var kept = group.querySelector("input[data-rbac-cond-kept]");
      if (kept) { kept.value = ""; }
    });
    var count = cell.querySelector(".rbac-cell-conds");
    if (count) { count.remove(); }
  }

  function applyShortcut(form, value) {
    var cut = value.lastIndexOf(":");
    var module = value.slice(0, cut), level = value.slice(cut + 1);
    cells(form, module).forEach(function (cell) {
      var scope = cell.querySelector("select.rbac-scope");
      if (!scope) { return; }
      var action = scope.getAttribute("data-action");
      var grant = level === "full" || (level === "view" && action === "view");
      scope.value = grant ? "all" : "";
      var deny = cell.querySelector("input.rbac-deny-box");
      if (deny) { deny.checked = false; }
      clearConditions(form, cell);
      refreshCell(cell);
    });
  }

  function refreshCell(cell) {
    var scope = cell.querySelector("select.rbac-scope");
    var deny = cell.querySelector("input.rbac-deny-box");
    if (scope) { cell.classList.toggle("is-granted", scope.value !== ""); }
    if (deny) { cell.classList.toggle("is-denied", deny.checked); }
  }

  function markStale(form) {
    form.querySelectorAll("[data-rbac-save]").forEach(function (button) { button.disabled = true; });
    form.querySelectorAll("[data-rbac-stale]").forEach(function (note) { note.hidden = false; });
  }

  document.querySelectorAll("form[data-rbac-matrix]").forEach(function (form) {
    form.addEventListener("click", function (event) {
      var button = event.target.closest("button[data-shortcut]");
      if (!button || !form.contains(button)) { return; }
      event.preventDefault();
      applyShortcut(form, button.getAttribute("data-shortcut"));
      markStale(form);
    });
    form.addEventListener("change", function (event) {
      var cell = event.target.closest("td.rbac-cell");
      if (cell) { refreshCell(cell); }
      markStale(form);
    });
    form.addEventListener("input", function () { markStale(form); });
    form.addEventListener("rbac:conditions-changed", function () { markStale(form); });
  });
})();
