/* The plugin pages' behaviour, wired by data- attributes (a strict
 * Content-Security-Policy allows no inline script). Everything here is an
 * enhancement: without JavaScript each form still submits and the server
 * checks it the same way.
 *
 * - <form data-rbac-confirm="Question?"> (or the attribute on its submit
 *   button): asks in a dialog before submitting. "{count}" in the question
 *   is replaced by the number of row checkboxes a select-all controls.
 * - <input type="checkbox" data-rbac-select-all="NAME">: checks or clears
 *   every checkbox named NAME in its form; [data-rbac-selected-count="NAME"]
 *   shows how many are checked, and buttons marked data-rbac-needs-selection
 *   stay disabled while none is.
 */
(function () {
  "use strict";

  function rows(form, name) {
    return Array.prototype.filter.call(form.elements, function (el) {
      return el.type === "checkbox" && el.name === name;
    });
  }

  function selectionName(form) {
    var master = form.querySelector("[data-rbac-select-all]") ||
      (form.id && document.querySelector('[form="' + form.id + '"][data-rbac-select-all]'));
    return master ? master.getAttribute("data-rbac-select-all") : null;
  }

  function refreshSelection(form) {
    var name = selectionName(form);
    if (!name) { return; }
    var boxes = rows(form, name);
    var checked = boxes.filter(function (b) { return b.checked; }).length;
    document.querySelectorAll('[data-rbac-selected-count="' + name + '"]').forEach(function (out) {
      out.textContent = checked + " selected";
    });
    document.querySelectorAll('[data-rbac-select-all="' + name + '"]').forEach(function (master) {
      master.checked = boxes.length > 0 && checked === boxes.length;
      master.indeterminate = checked > 0 && checked < boxes.length;
    });
    form.querySelectorAll("[data-rbac-needs-selection]").forEach(function (button) {
      button.disabled = checked === 0;
    });
    if (form.id) {
      document.querySelectorAll('[form="' + form.id + '"][data-rbac-needs-selection]').forEach(function (button) {
        button.disabled = checked === 0;
      });
    }
  }

  function selectedCount(form) {
    var name = selectionName(form);
    return name ? rows(form, name).filter(function (b) { return b.checked; }).length : 0;
  }

  var dialog = null;
  function confirmDialog() {
    if (dialog) { return dialog; }
    dialog = document.createElement("dialog");
    dialog.className = "rbac-dialog rbac-ui";
    dialog.setAttribute("aria-labelledby", "rbac-dialog-title");
    dialog.innerHTML =
      '<form method="dialog">' +
      '<h2 id="rbac-dialog-title">Please confirm</h2>' +
      '<p class="rbac-dialog-message"></p>' +
      '<div class="rbac-form-actions">' +
      '<button type="submit" value="cancel" class="rbac-button rbac-button--secondary">Cancel</button>' +
      '<button type="submit" value="confirm" class="rbac-button rbac-button--danger" data-rbac-dialog-confirm>Confirm</button>' +
      "</div></form>";
    document.body.appendChild(dialog);
    return dialog;
  }

  function ask(question, label, onConfirm) {
    var box = confirmDialog();
    box.querySelector(".rbac-dialog-message").textContent = question;
    box.querySelector("[data-rbac-dialog-confirm]").textContent = label || "Confirm";
    box.returnValue = "";
    box.addEventListener("close", function handler() {
      box.removeEventListener("close", handler);
      if (box.returnValue === "confirm") { onConfirm(); }
    });
    if (typeof box.showModal === "function") {
      box.showModal();
      box.querySelector('[value="cancel"]').focus();
    } else if (window.confirm(question)) {
      onConfirm();
    }
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || form.method === "dialog") { return; }
    var submitter = event.submitter || null;
    var source = submitter && submitter.hasAttribute("data-rbac-confirm") ? submitter :
      (form.hasAttribute("data-rbac-confirm") ? form : null);
    if (!source || form.hasAttribute("data-rbac-confirmed")) { return; }
    event.preventDefault();
    var question = source.getAttribute("data-rbac-confirm").replace("{count}", String(selectedCount(form)));
    ask(question, source.getAttribute("data-rbac-confirm-label"), function () {
      form.setAttribute("data-rbac-confirmed", "");
      if (submitter && submitter.name) {
        var carry = document.createElement("input");
        carry.type = "hidden";
        carry.name = submitter.name;
        carry.value = submitter.value;
        form.appendChild(carry);
      }
      form.submit();
    });
  }, true);

  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!(box instanceof HTMLInputElement) || box.type !== "checkbox" || !box.form) { return; }
    var name = box.getAttribute("data-rbac-select-all");
    if (name) {
      rows(box.form, name).forEach(function (row) { row.checked = box.checked; });
    }
    refreshSelection(box.form);
  });

  function init() {
    document.querySelectorAll("[data-rbac-select-all]").forEach(function (master) {
      if (master.form) { refreshSelection(master.form); }
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
