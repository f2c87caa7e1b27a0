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
    const control = el.matches("input, select, textarea");
    const text = (control ? (PRESSABLE.has(kind(el)) ? el.value : "") : el.textContent || "")
      .trim().replace(/\s+/g, " ").slice(0, control || el.tagName === "BUTTON" ? 40 : 24);
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

  // Where the page gets wider than the viewport: the outermost boxes sticking
  // out past its right edge (their parent still fits, so the fix is there),
  // and the innermost boxes whose content (a long word, a table's cells)
  // spills past it while the box itself fits.
  function overflowing() {
    const edge = window.innerWidth + 1;
    const found = [];
    const sticking = [];
    const spilling = [];
    for (const el of document.body.querySelectorAll("*")) {
      if (!rendered(el) || clipped(el)) { continue; }
      const rect = el.getBoundingClientRect();
      const parent = el.parentElement;
      if (rect.right > edge && parent && parent.getBoundingClientRect().right <= edge) {
        sticking.push(el);
        found.push(describe(el) + " (right edge " + Math.round(rect.right) + "px)");
      } else if (getComputedStyle(el).overflowX === "visible" && el.scrollWidth > el.clientWidth + 1 &&
                 rect.left + el.scrollWidth > edge) {
        spilling.push(el);
      }
    }
    for (const el of spilling) {
      const inner = spilling.concat(sticking).some((other) => other !== el && el.contains(other));
      if (!inner) {
        const reach = el.getBoundingClientRect().left + el.scrollWidth;
        found.push(describe(el) + " (content spills to " + Math.round(reach) + "px)");
      }
    }
    return found.slice(0, 6);
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
  // A script included twice runs twice (two listeners: two dialogs for one click).
  const seen = {};
  const twice = [];
  for (const el of document.querySelectorAll("script[src], link[rel=stylesheet][href]")) {
    const url = el.getAttribute("src") || el.getAttribute("href");
    if (seen[url]) { twice.push(url); }
    seen[url] = true;
  }
  const scrollWidth = document.documentElement.scrollWidth;
  return {
    scrollWidth: scrollWidth,
    innerWidth: window.innerWidth,
    overflowing: scrollWidth > window.innerWidth ? overflowing() : [],
    unstyled: unstyled,
    unlabelled: unlabelled,
    twice: twice,
  };
}
