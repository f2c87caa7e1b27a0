/* The role editor's condition builder, enhanced in the browser.
 *
 * The server renders every condition row (field / operator / value) with a
 * typed value input and one blank row per cell, so the form works without
 * JavaScript (settings/condition_form.py reads the rows). Here:
 * - the blank row becomes an "Add a condition" button, which adds rows;
 * - each row gets a "Remove" button;
 * - choosing a field offers only the operators valid for it, and the value
 *   input follows the field and operator: a number, a date, a pick list of
 *   the field's choices, checkboxes for "is one of", nothing for "is empty".
 * The fields of a resource come from data-rbac-fields on its <details>.
 */
(function () {
  "use strict";

  function fieldsOf(row) {
    var holder = row.closest("[data-rbac-fields]");
    if (!holder) { return {}; }
    if (!holder._rbacFields) {
      try { holder._rbacFields = JSON.parse(holder.getAttribute("data-rbac-fields")) || {}; }
      catch (e) { holder._rbacFields = {}; }
    }
    return holder._rbacFields;
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text) { node.textContent = text; }
    return node;
  }

  function option(value, text, selected) {
    var node = el("option", { value: value }, text);
    if (selected) { node.selected = true; }
    return node;
  }

  function baseOf(row) { return row.getAttribute("data-rbac-clause"); }

  function whereOf(row) {
    var label = row.querySelector("[data-rbac-clause-field]").getAttribute("aria-label") || "";
    return label.replace(/: field$/, "");
  }

  function currentValues(box) {
    var picked = Array.prototype.filter.call(box.querySelectorAll("input[type=checkbox]"),
      function (b) { return b.checked; }).map(function (b) { return b.value; });
    var single = box.querySelector("input:not([type=checkbox]), select");
    return { picks: picked, text: single ? single.value : (picked[0] || "") };
  }

  function buildOps(row, info) {
    var select = row.querySelector("[data-rbac-clause-op]");
    if (!info) { return; }
    var current = select.value, keep = false;
    select.textContent = "";
    select.appendChild(option("", "— operator —", false));
    info.ops.forEach(function (pair) {
      if (pair[0] === current) { keep = true; }
      select.appendChild(option(pair[0], pair[1], pair[0] === current));
    });
    if (!keep) { select.value = ""; }
  }

  function buildValue(row, info) {
    var box = row.querySelector("[data-rbac-clause-value]");
    var op = row.querySelector("[data-rbac-clause-op]").value;
    var base = baseOf(row), where = whereOf(row), old = currentValues(box);
    box.textContent = "";
    if (op === "empty" || op === "not_empty") {
      box.appendChild(el("span", { "class": "rbac-muted rbac-clause-novalue" }, "no value needed"));
    } else if (info && info.kind === "choice" && op === "in") {
      var set = el("fieldset", { "class": "rbac-picks" });
      set.appendChild(el("legend", { "class": "rbac-visually-hidden" }, where + ": values"));
      info.choices.forEach(function (choice, k) {
        var label = el("label", { "class": "rbac-check" });
        var box2 = el("input", { type: "checkbox", name: base + "__pick__" + k, value: choice });
        box2.checked = old.picks.indexOf(choice) >= 0 || old.text === choice;
        label.appendChild(box2);
        label.appendChild(el("span", {}, choice));
        set.appendChild(label);
      });
      box.appendChild(set);
    } else if (info && (info.kind === "choice" || info.kind === "boolean")) {
      var select = el("select", { name: base + "__value", "aria-label": where + ": value" });
      var pairs = info.kind === "choice" ? info.choices.map(function (c) { return [c, c]; }) :
        [["true", "yes"], ["false", "no"]];
      select.appendChild(option("", "— value —", false));
      pairs.forEach(function (pair) { select.appendChild(option(pair[0], pair[1], pair[0] === old.text)); });
      box.appendChild(select);
    } else if (op === "in") {
      box.appendChild(el("input", { type: "text", name: base + "__value", value: old.text,
        placeholder: "a, b, c", "aria-label": where + ": values, separated by commas" }));
    } else {
      var attrs = { name: base + "__value", "aria-label": where + ": value" };
      var input = (info && info.input) || { type: "text" };
      Object.keys(input).forEach(function (key) { attrs[key] = input[key]; });
      var field = el("input", attrs);
      field.value = old.picks.length ? "" : old.text;
      box.appendChild(field);
    }
  }

  function renumber(row, oldIndex, newIndex) {
    var oldBase = baseOf(row), newBase = oldBase.replace(/__\d+$/, "__" + newIndex);
    [row].concat(Array.prototype.slice.call(row.querySelectorAll("*"))).forEach(function (node) {
      ["name", "data-rbac-clause", "id", "aria-describedby"].forEach(function (attr) {
        var value = node.getAttribute(attr);
        if (value && value.indexOf(oldBase) === 0) { node.setAttribute(attr, newBase + value.slice(oldBase.length)); }
      });
      var label = node.getAttribute("aria-label");
      if (label) {
        node.setAttribute("aria-label", label.replace("condition " + (oldIndex + 1), "condition " + (newIndex + 1)));
      }
    });
  }

  function changed(node) {
    node.dispatchEvent(new CustomEvent("rbac:conditions-changed", { bubbles: true }));
  }

  function setUp(group) {
    if (group.closest("fieldset[disabled]")) { return; }
    var blank = group.querySelector("[data-rbac-blank]");
    var add = group.querySelector("[data-rbac-clause-add]");
    var list = group.querySelector(".rbac-clauses");
    if (!blank || !add || !list) { return; }
    var template = blank.cloneNode(true);
    var start = parseInt(baseOf(blank).match(/__(\d+)$/)[1], 10), next = start;
    template.removeAttribute("data-rbac-blank");
    blank.remove();
    group.querySelectorAll("[data-rbac-clause-remove]").forEach(function (b) { b.hidden = false; });
    add.hidden = false;
    add.addEventListener("click", function () {
      var row = template.cloneNode(true);
      renumber(row, start, next);
      next += 1;
      row.querySelector("[data-rbac-clause-remove]").hidden = false;
      list.appendChild(row);
      row.querySelector("[data-rbac-clause-field]").focus();
      changed(group);
    });
  }

  document.querySelectorAll("[data-rbac-cond-cell]").forEach(setUp);

  document.addEventListener("change", function (event) {
    var row = event.target.closest && event.target.closest("[data-rbac-clause]");
    if (!row) { return; }
    if (event.target.hasAttribute("data-rbac-clause-field")) {
      var info = fieldsOf(row)[event.target.value];
      buildOps(row, info);
      buildValue(row, info);
    } else if (event.target.hasAttribute("data-rbac-clause-op")) {
      buildValue(row, fieldsOf(row)[row.querySelector("[data-rbac-clause-field]").value]);
    }
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-rbac-clause-remove]");
    if (!button) { return; }
    var row = button.closest("[data-rbac-clause]");
    var group = row.closest("[data-rbac-cond-cell]");
    row.remove();
    var add = group && group.querySelector("[data-rbac-clause-add]");
    if (add) { add.focus(); }
    if (group) { changed(group); }
  });
})();
