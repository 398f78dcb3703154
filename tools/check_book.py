"""Check the built book in headless Chromium: every chapter page shows its figures, and every
widget on it renders (is not blank).

    python tools/check_book.py _build/html [--screenshots DIR]

The pages are served on 127.0.0.1 by a local HTTP server (the widget loader needs http, not
file URLs). For each chapter page (from book/_toc.yml): all images in the article loaded with a
non-zero size, at least one figure present, and each widget view the page embeds rendered into
a visible element. Screenshots go to DIR for a person to look at. Exit status 1 on any failure.
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
                  "--disable-component-update", "--disable-sync", "--disable-quic", "--window-size=1280,2000"]

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


def check_page(driver, url: str, name: str, screenshots: Path | None, settle_s: float = 20.0) -> list[str]:
    """Problems found on one page (empty when it passes)."""
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
    if screenshots is not None:
        driver.save_screenshot(str(screenshots / f"{name}.png"))
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
    print(f"[check] {name}: {len(figures)} figure(s), {views} widget view(s), {len(visible)} rendered"
          + ("" if not problems else "  <- " + "; ".join(problems)), flush=True)
    return problems


def check_book(html: Path, screenshots: Path | None = None, require_widgets: bool = True) -> int:
    html = html.resolve()
    if not (html / "index.html").exists():
        print(f"[check] {html}/index.html does not exist: build the book first", file=sys.stderr)
        return 1
    if screenshots is not None:
        screenshots.mkdir(parents=True, exist_ok=True)
    server, base = serve(html)
    problems: list[str] = []
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
                problems += check_page(driver, f"{base}/{stem}.html", stem, screenshots)
            for stem in chapters_from_toc(pages=True):  # the markdown pages: present, nothing clipped
                if not (html / f"{stem}.html").exists():
                    problems.append(f"{stem}: page missing from the build")
                    continue
                driver.get(f"{base}/{stem}.html")
                clipped = driver.execute_script(CLIPPED_JS)
                if clipped:
                    problems.append(f"{stem}: {len(clipped)} table(s) or code block(s) clipped at the right, "
                                    f"first {clipped[0]!r}")
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
    for p in problems:
        print(f"[check] FAIL {p}", file=sys.stderr)
    print(f"[check] {'FAILED' if problems else 'passed'}: {len(chapters_from_toc())} chapter page(s)")
    return 1 if problems else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html", type=Path, nargs="?", default=ROOT / "_build" / "html")
    parser.add_argument("--screenshots", type=Path, default=None)
    args = parser.parse_args(argv)
    return check_book(args.html, args.screenshots)


if __name__ == "__main__":
    sys.exit(main())
