/* What Flask-Admin's own templates leave out, added without copying them:
 *
 * - the page's language (<html lang>), which screen readers need to pick
 *   a voice;
 * - a name for the search box (it has only a placeholder) and for the row
 *   selection checkboxes (they have only a title, which some assistive
 *   technology does not read).
 */
(function () {
  "use strict";
  if (!document.documentElement.lang) { document.documentElement.lang = "en"; }
  document.querySelectorAll('input[name="search"][type="text"]').forEach(function (box) {
    if (!box.getAttribute("aria-label")) { box.setAttribute("aria-label", "Search records"); }
  });
  document.querySelectorAll("input.action-rowtoggle, input.action-checkbox").forEach(function (box) {
    if (!box.getAttribute("aria-label")) {
      box.setAttribute("aria-label", box.getAttribute("title") || "Select");
    }
  });
})();
