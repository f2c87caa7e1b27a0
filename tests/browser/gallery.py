"""Write ``index.html`` beside the browser tests' screenshots: a contact sheet to review.

The page sweep names its screenshots ``<role>-<endpoint>-<width>.png``;
the sheet has one row per page (endpoint) and one thumbnail per role and
width, each linking to the full image. Other screenshots (the journeys')
are listed after, by name. The file is static HTML for a local browser,
never served by the app, so its small inline style sheet meets no CSP.

Run by the ``screenshot_dir`` fixture at the end of each test session, or
by hand: ``python -m tests.browser.gallery [DIR]``.
"""

from __future__ import annotations

import html
import os
import re
import sys
from collections import defaultdict
from pathlib import Path

#: ``<role>-<endpoint>-<width>.png``: roles and endpoints carry no hyphen.
SWEEP_NAME = re.compile(r"^(?P<role>[a-z_]+)-(?P<page>[^-]+)-(?P<width>\d+)$")
#: Column order of the sheet: the roles from the most rights to none.
ROLE_ORDER = ("owner", "admin", "member", "viewer", "anonymous")

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1f2933; }
table { border-collapse: collapse; }
th, td { border: 1px solid #d9dee4; padding: 6px; vertical-align: top; text-align: left; }
th[scope=row] { font: 12px ui-monospace, monospace; max-width: 16rem; word-break: break-all; }
figure { margin: 0; }
figcaption { font-size: 12px; color: #52606d; }
img { display: block; width: 160px; max-height: 240px; object-fit: cover;
      object-position: top; border: 1px solid #d9dee4; }
img.narrow { width: 78px; }
"""


def _column_key(column: tuple[str, int]) -> tuple[int, str, int]:
    role, width = column
    rank = ROLE_ORDER.index(role) if role in ROLE_ORDER else len(ROLE_ORDER)
    return rank, role, -width


def _thumb(name: str, caption: str, width: int | None = None) -> str:
    href = html.escape(name, quote=True)
    narrow = ' class="narrow"' if width is not None and width < 800 else ""
    return (f'<figure><a href="{href}"><img src="{href}" alt="{html.escape(caption)}"'
            f'{narrow} loading="lazy"></a><figcaption>{html.escape(caption)}</figcaption></figure>')


def render(names: list[str]) -> str:
    """The contact sheet of the PNG file ``names`` (no directory part)."""
    pages: dict[str, dict[tuple[str, int], str]] = defaultdict(dict)
    others = []
    for name in sorted(names):
        match = SWEEP_NAME.match(name.removesuffix(".png"))
        if match:
            column = (match["role"], int(match["width"]))
            pages[match["page"]][column] = name
        else:
            others.append(name)
    columns = sorted({c for shots in pages.values() for c in shots}, key=_column_key)
    head = "".join(f'<th scope="col">{html.escape(r)} {w}px</th>' for r, w in columns)
    rows = []
    for page in sorted(pages):
        cells = "".join(
            f"<td>{_thumb(pages[page][c], f'{c[0]} {c[1]}px', c[1])}</td>"
            if c in pages[page] else "<td></td>" for c in columns)
        rows.append(f'<tr><th scope="row">{html.escape(page)}</th>{cells}</tr>')
    extra = "".join(f"<li>{_thumb(n, n.removesuffix('.png'))}</li>" for n in others)
    return (f'<!doctype html><html lang="en"><meta charset="utf-8">'
            f"<title>Screenshots</title><style>{STYLE}</style>"
            f"<h1>Screenshots</h1><p>{len(names)} images; each links to the full page.</p>"
            f'<h2>Every page</h2><table><thead><tr><th scope="col">Page</th>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>"
            + (f"<h2>Journeys</h2><ul>{extra}</ul>" if others else "") + "</html>\n")


def write_gallery(directory: Path) -> Path | None:
    """Write ``directory/index.html`` from its PNGs; ``None`` when there are none.

    Written to a temporary name and moved into place, so a second xdist
    worker finishing at the same moment never leaves half a file.
    """
    names = [p.name for p in directory.glob("*.png")]
    if not names:
        return None
    target = directory / "index.html"
    partial = directory / f".index.{os.getpid()}.html"
    partial.write_text(render(names), encoding="utf-8")
    os.replace(partial, target)
    return target


if __name__ == "__main__":
    where = Path(sys.argv[1] if len(sys.argv) > 1 else
                 os.environ.get("RBAC_SCREENSHOT_DIR") or "screenshots")
    print(write_gallery(where) or f"no screenshots in {where}")
