"""Check the built book in headless Chromium: every chapter page shows its figures, every widget
on it renders (is not blank), and a reader can read every page whole.

    python tools/check_book.py _build/html [--screenshots DIR] [--no-stand-ins]

The pages are served on 127.0.0.1 by a local HTTP server (the widget loader needs http, not
file URLs), in a window 1,400 px wide. For each chapter page (from book/_toc.yml): all images in
the article loaded with a non-zero size, at least one figure present, and each widget view the
page embeds rendered into a visible element. On every page (chapters and markdown pages), with
the book's collapsed blocks opened, a failure is:

* a **cut cell**: a table cell cut with "…" or "...", or a code or printed block whose lines run
  past its box (it scrolls or is clipped);
* a **table wider than the text column** (even one that scrolls inside it);
* a **literal backtick** in the text a reader sees (outside code), e.g. a printed `command`;
* a **NaN** where a value is missing, in a table or a cell's output (tables write "–"; prose may
  name NaN);
* a **visible plumbing cell**: a shown code cell with control flow (``if``/``for``/``try``), an
  import, a ``lambda``, a test of the profile, or a call of ``chapter.missing``: such cells are
  hidden (``hide-input``) or moved into ``lmcore.book``;
* a parameters cell shown.

A **stand-in** (``lmcore.book.viz.stand_in``: the box a reference-profile chapter shows where it
has no committed reference for a table or figure) is counted and listed; with ``--no-stand-ins``
each one is a failure (the reference book once every reference is committed). Screenshots go to
DIR for a person to look at. Exit status 1 on any failure.
"""
from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

from build_book import chapters_from_toc  # noqa: E402

CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-quic", "--window-size=1400,2000"]

IMAGES_JS = """
const article = document.querySelector('main') || document.body;
return Array.from(article.querySelectorAll('img')).map(i => [i.currentSrc || i.src, i.complete, i.naturalWidth, i.naturalHeight]);
"""

WIDGETS_JS = """
const views = document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length;
const rendered = Array.from(document.querySelectorAll('.jupyter-widgets.widget-container, .jupyter-widgets.widget-inline-hbox, .jupyter-widgets.widget-inline-vbox, .jupyter-widgets.widget-box, .widget-vbox, .widget-hbox, .jupyter-widgets'))
  .filter(e => !e.parentElement.closest('.jupyter-widgets'))
  .map(e => [e.className, e.offsetWidth, e.offsetHeight, e.querySelectorAll('img').length,
             Array.from(e.querySelectorAll('img')).filter(i => i.naturalWidth > 0).length]);
const errors = Array.from(document.querySelectorAll('.jupyter-widgets-error-widget, .widget-error')).length;
return [views, rendered, errors];
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def make_driver(profile_dir: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={profile_dir}"]:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver_path), options=options)


#: text of the chapters' parameters cell and of papermill's injected one, which no page may show
PARAMETER_MARKERS = ("profile = None  #", "# Parameters\nprofile = ")
# Tables and printed lines whose box, or whose content, runs past the right edge of the article
# without scrolling inside it: what a reader cannot see (a table that scrolls in the column is fine).
CLIPPED_JS = """
const article = document.querySelector('article') || document.querySelector('#main-content');
if (!article) return [];
const right = article.getBoundingClientRect().right;
function scrolls(el) {
  for (let e = el; e && e !== article; e = e.parentElement) {
    const s = getComputedStyle(e);
    if (['auto', 'scroll'].includes(s.overflowX) && e.getBoundingClientRect().right <= right + 2) return true;
  }
  return false;
}
return Array.from(article.querySelectorAll('table, pre'))
  .filter(el => el.getBoundingClientRect().width > 0 && !scrolls(el) &&
                (el.getBoundingClientRect().right > right + 2 || el.scrollWidth > el.clientWidth + 2))
  .map(el => el.tagName.toLowerCase() + ': ' + el.innerText.slice(0, 60).replace(/\\s+/g, ' '));
"""


#: the marker of a stand-in box (lmcore.book.viz.basics.STAND_IN_CLASS)
STAND_IN_CLASS = "lmbook-stand-in"
STAND_INS_JS = f"""
return Array.from(document.querySelectorAll('.{STAND_IN_CLASS}')).map(e => e.innerText.replace(/\\s+/g, ' ').trim());
"""

# What a reader cannot read whole, with the book's collapsed blocks (<details class="lmbook-details">) opened:
# cut cells, tables wider than the column, literal backticks and NaN in the text outside code.
READABILITY_JS = """
const article = document.querySelector('article') || document.querySelector('#main-content') || document.body;
const opened = Array.from(article.querySelectorAll('details.lmbook-details:not([open])'));
opened.forEach(d => d.open = true);
const right = article.getBoundingClientRect().right;
const visible = e => e.getClientRects().length > 0 && e.getBoundingClientRect().width > 0;
const short = e => e.innerText.slice(0, 60).replace(/\\s+/g, ' ');
const out = {cut: [], wide: [], backtick: [], nan: []};
article.querySelectorAll('td, th').forEach(c => {
  const t = c.innerText.trim();
  if (visible(c) && (t.endsWith('…') || t.endsWith('...'))) out.cut.push('cell: ' + t.slice(-60));
  if (visible(c) && /^(nan|NaN|<NA>|NaT|None)$/.test(t)) out.nan.push('cell: ' + short(c.closest('tr')));
});
article.querySelectorAll('pre').forEach(p => {
  if (visible(p) && (p.scrollWidth > p.clientWidth + 2 || p.getBoundingClientRect().right > right + 2))
    out.cut.push('block: ' + short(p));
});
article.querySelectorAll('table').forEach(t => {
  if (visible(t) && (t.scrollWidth > t.clientWidth + 2 || t.getBoundingClientRect().right > right + 2))
    out.wide.push(`table ${Math.round(t.scrollWidth)} px in ${Math.round(t.clientWidth)} px: ` + short(t));
});
// the text a reader sees outside code: markdown, tables, printed output (code cells' inputs and code excluded)
const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
for (let n = walker.nextNode(); n; n = walker.nextNode()) {
  const el = n.parentElement;
  if (!el || !visible(el) || el.closest('code, kbd, .cell_input, script, style')) continue;
  if (el.closest('div.highlight') && !el.closest('.cell_output')) continue;  // a markdown code block
  const t = n.textContent;
  if (t.includes('`')) out.backtick.push(t.trim().slice(0, 80));
  if (/\\bNaN\\b/.test(t) && el.closest('.cell_output')) out.nan.push(t.trim().slice(0, 80));  // a value, not prose
}
opened.forEach(d => d.open = false);
return out;
"""

# Code cells a reader sees (not hidden behind "show code"), with the plumbing that belongs in lmcore.book.
PLUMBING_JS = """
return Array.from(document.querySelectorAll('div.cell_input'))
  .filter(e => e.getClientRects().length > 0 && e.offsetHeight > 0)
  .map(e => e.innerText);
"""
PLUMBING = [
    (r"^\s*(if|elif|else|for|while|try|except|with)\b", "control flow"),
    (r"^\s*(import|from)\s+\S+", "an import"),
    (r"\blambda\b", "a lambda"),
    (r"\bprofile\s*==|==\s*[\"'](smoke|reference|cpu|paper)[\"']", "a test of the profile"),
    (r"\.missing\(", "a stand-in call"),
]


def plumbing(code: str) -> list[str]:
    """What makes a shown code cell plumbing (empty: a cell of calls a reader may see)."""
    import re

    return [why for pattern, why in PLUMBING if re.search(pattern, code, flags=re.MULTILINE)]


def readability_problems(driver, name: str) -> list[str]:
    """Cut cells, wide tables, literal backticks, NaN and visible plumbing cells on the loaded page."""
    found = driver.execute_script(READABILITY_JS)
    problems = []
    for kind, what in (("cut", "cut cell(s) or block(s)"), ("wide", "table(s) wider than the text column"),
                       ("backtick", "literal backtick(s) in the text"), ("nan", "NaN value(s) shown")):
        if found[kind]:
            problems.append(f"{name}: {len(found[kind])} {what}, first {found[kind][0]!r}")
    shown = [(cell, plumbing(cell)) for cell in driver.execute_script(PLUMBING_JS)]
    shown = [(cell, why) for cell, why in shown if why]
    if shown:
        cell, why = shown[0]
        problems.append(f"{name}: {len(shown)} plumbing cell(s) shown, first ({', '.join(why)}): "
                        f"{cell.strip().splitlines()[0][:70]!r}")
    return problems


def check_page(driver, url: str, name: str, screenshots: Path | None, settle_s: float = 20.0,
               stand_ins: list | None = None) -> list[str]:
    """Problems found on one page (empty when it passes); the page's stand-ins are appended to
    ``stand_ins`` as ``(page, text)``."""
    problems = []
    driver.get(url)
    deadline = time.time() + settle_s
    while True:  # wait until images have loaded and every widget view has rendered, or time runs out
        images = driver.execute_script(IMAGES_JS)
        views, rendered, errors = driver.execute_script(WIDGETS_JS)
        visible = [r for r in rendered if r[1] > 0 and r[2] > 0 and (r[3] == 0 or r[4] == r[3])]
        if (all(i[1] for i in images) and len(visible) >= views) or time.time() > deadline:
            break
        time.sleep(0.5)
    if screenshots is not None:  # the page's top, and its middle
        driver.save_screenshot(str(screenshots / f"{name}.png"))
        driver.execute_script("window.scrollTo(0, document.body.scrollHeight / 2 - window.innerHeight / 2);")
        driver.save_screenshot(str(screenshots / f"{name}-middle.png"))
        driver.execute_script("window.scrollTo(0, 0);")
    broken = [i[0] for i in images if not i[1] or i[2] == 0]
    figures = [i for i in images if i[2] > 0 and not i[0].endswith((".svg", ".ico"))]
    if broken:
        problems.append(f"{name}: {len(broken)} image(s) did not load, first {broken[0]}")
    if not figures:
        problems.append(f"{name}: no figure on the page")
    if views and len(visible) < views:
        problems.append(f"{name}: {views} widget view(s) embedded but {len(visible)} rendered visibly")
    if errors:
        problems.append(f"{name}: {errors} widget error box(es)")
    code = driver.execute_script("return Array.from(document.querySelectorAll('div.cell_input, div.highlight pre'))"
                                 ".map(e => e.innerText).join('\\n');")
    if any(marker in code for marker in PARAMETER_MARKERS):
        problems.append(f"{name}: a parameters cell is shown")
    clipped = driver.execute_script(CLIPPED_JS)
    if clipped:
        problems.append(f"{name}: {len(clipped)} table(s) or printed block(s) clipped at the right, first {clipped[0]!r}")
    problems += readability_problems(driver, name)
    boxes = driver.execute_script(STAND_INS_JS)
    if stand_ins is not None:
        stand_ins += [(name, text) for text in boxes]
    print(f"[check] {name}: {len(figures)} figure(s), {views} widget view(s), {len(visible)} rendered, "
          f"{len(boxes)} stand-in(s)" + ("" if not problems else "  <- " + "; ".join(problems)), flush=True)
    return problems


def check_book(html: Path, screenshots: Path | None = None, require_widgets: bool = True,
               stand_ins_fail: bool = False) -> int:
    """Check every page of the book built at ``html``; 1 on any failure (with ``stand_ins_fail``, a
    stand-in box is one), else 0."""
    html = html.resolve()
    if not (html / "index.html").exists():
        print(f"[check] {html}/index.html does not exist: build the book first", file=sys.stderr)
        return 1
    if screenshots is not None:
        screenshots.mkdir(parents=True, exist_ok=True)
    server, base = serve(html)
    problems: list[str] = []
    stand_ins: list[tuple[str, str]] = []
    total_views = 0
    with tempfile.TemporaryDirectory() as profile_dir:
        driver = make_driver(profile_dir)
        try:
            for stem in chapters_from_toc():
                page = html / f"{stem}.html"
                if not page.exists():
                    problems.append(f"{stem}: page missing from the build")
                    continue
                total_views += page.read_text().count("application/vnd.jupyter.widget-view+json")
                problems += check_page(driver, f"{base}/{stem}.html", stem, screenshots, stand_ins=stand_ins)
            for stem in ["intro", *chapters_from_toc(pages=True)]:  # the index and the markdown pages
                if not (html / f"{stem}.html").exists():
                    problems.append(f"{stem}: page missing from the build")
                    continue
                driver.get(f"{base}/{stem}.html")
                if screenshots is not None:
                    driver.save_screenshot(str(screenshots / f"{stem}.png"))
                clipped = driver.execute_script(CLIPPED_JS)
                if clipped:
                    problems.append(f"{stem}: {len(clipped)} table(s) or code block(s) clipped at the right, "
                                    f"first {clipped[0]!r}")
                problems += readability_problems(driver, stem)
        finally:
            driver.quit()
            server.shutdown()
    if require_widgets and total_views == 0:
        problems.append("no page of the book embeds a widget")
    intro = html / "intro.html"
    if intro.exists():  # the index's own table must link every chapter, not only the sidebar
        body = intro.read_text().split('id="main-content"')[-1]
        problems += [f"intro: the index does not link {stem}" for stem in chapters_from_toc()
                     if f'href="{stem}.html' not in body]
    for page, text in stand_ins:
        print(f"[check] stand-in on {page}: {text[:160]}")
    if stand_ins_fail and stand_ins:
        problems.append(f"{len(stand_ins)} stand-in box(es) where a table or figure should be (--no-stand-ins)")
    for p in problems:
        print(f"[check] FAIL {p}", file=sys.stderr)
    print(f"[check] {'FAILED' if problems else 'passed'}: {len(chapters_from_toc())} chapter page(s)")
    return 1 if problems else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html", type=Path, nargs="?", default=ROOT / "_build" / "html")
    parser.add_argument("--screenshots", type=Path, default=None)
    parser.add_argument("--no-stand-ins", action="store_true",
                        help="fail on a stand-in box (a table or figure a reference build has no committed run for)")
    args = parser.parse_args(argv)
    return check_book(args.html, args.screenshots, stand_ins_fail=args.no_stand_ins)


if __name__ == "__main__":
    sys.exit(main())
