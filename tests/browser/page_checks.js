/* The layout, styling and labelling checks of tests/browser/test_every_page.py.
 *
 * Evaluated by Playwright as a function of ``ua``: the computed style
 * Chromium gives each kind of control on an unstyled page (see
 * sweep.ua_defaults). Returns plain data; the Python side words the
 * assertion. Runs through page.evaluate, which the page's CSP does not
 * govern.
 */
(ua) => {
  "use strict";
  // Controls whose look is their accent colour (the UA draws the mark).
  const ACCENTED = new Set(["input:checkbox", "input:radio", "input:range"]);
  // Controls a person presses: their name is their text, not a <label>.
  const PRESSABLE = new Set(["button", "input:submit", "input:button", "input:reset", "input:image"]);

  function kind(el) {
    const tag = el.tagName.toLowerCase();
    if (tag === "input") { return "input:" + (el.type || "text"); }
    if (tag === "select") { return el.multiple || el.size > 1 ? "select:multiple" : "select"; }
    return tag;
  }

  function rendered(el) {
    return el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden";
  }

  function describe(el) {
    let name = el.tagName.toLowerCase();
    if (el.id) { name += "#" + el.id; }
    else if (el.getAttribute("name")) { name += '[name="' + el.getAttribute("name") + '"]'; }
    if (name.startsWith("input")) { name += "[type=" + el.type + "]"; }
    if (!el.id && el.classList.length) { name += "." + Array.from(el.classList).slice(0, 2).join("."); }
    const text = (el.tagName === "BUTTON" ? el.textContent :
      (PRESSABLE.has(kind(el)) ? el.value : "")).trim().replace(/\s+/g, " ").slice(0, 40);
    return text ? name + ' "' + text + '"' : name;
  }

  function box(style) {
    return {
      border: style.borderTopWidth + " " + style.borderTopStyle + " " + style.borderTopColor,
      radius: style.borderTopLeftRadius,
      padding: [style.paddingTop, style.paddingRight, style.paddingBottom, style.paddingLeft].join(" "),
    };
  }

  function unstyledBecause(el) {
    const k = kind(el);
    const style = getComputedStyle(el);
    if (ACCENTED.has(k)) {
      return style.accentColor === "auto" && style.appearance !== "none" ? "accent-color auto" : null;
    }
    const d = ua[k] || ua[PRESSABLE.has(k) ? "button" : "input:text"];
    const reasons = [];
    if (style.fontSize === d.fontSize) { reasons.push("font-size " + style.fontSize); }
    const mine = box(style);
    if (mine.border === d.border && mine.radius === d.radius && mine.padding === d.padding) {
      reasons.push("UA border " + mine.border + ", radius " + mine.radius);
    }
    return reasons.length ? reasons.join("; ") : null;
  }

  function named(el) {
    const text = (s) => (s || "").trim() !== "";
    if (el.labels && Array.from(el.labels).some((l) => text(l.textContent))) { return true; }
    if (text(el.getAttribute("aria-label"))) { return true; }
    const ids = (el.getAttribute("aria-labelledby") || "").split(/\s+/).filter(Boolean);
    return ids.some((id) => { const ref = document.getElementById(id); return ref && text(ref.textContent); });
  }

  // Inside a box that scrolls or clips sideways, an element cannot widen the page.
  function clipped(el) {
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      if (getComputedStyle(up).overflowX !== "visible") { return true; }
    }
    return false;
  }

  // The outermost elements sticking out past the viewport's right edge: the
  // ones whose parent still fits are where a fix belongs.
  function overflowing() {
    const edge = window.innerWidth + 1;
    const found = [];
    for (const el of document.body.querySelectorAll("*")) {
      const right = el.getBoundingClientRect().right;
      const parent = el.parentElement;
      if (right > edge && rendered(el) && parent && parent.getBoundingClientRect().right <= edge
          && !clipped(el)) {
        found.push(describe(el) + " (right edge " + Math.round(right) + "px)");
      }
      if (found.length >= 5) { break; }
    }
    return found;
  }

  const controls = Array.from(document.querySelectorAll("input, select, textarea, button"))
    .filter((el) => el.type !== "hidden" && rendered(el));
  const unstyled = [];
  const unlabelled = [];
  for (const el of controls) {
    const why = unstyledBecause(el);
    if (why) { unstyled.push(describe(el) + ": " + why); }
    if (!PRESSABLE.has(kind(el)) && !named(el)) { unlabelled.push(describe(el)); }
  }
  const scrollWidth = document.documentElement.scrollWidth;
  return {
    scrollWidth: scrollWidth,
    innerWidth: window.innerWidth,
    overflowing: scrollWidth > window.innerWidth ? overflowing() : [],
    unstyled: unstyled,
    unlabelled: unlabelled,
  };
}
