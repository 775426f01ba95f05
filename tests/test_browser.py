"""The built book in a real browser: what a reader on a desktop or a phone sees.

Besides navigation, math, links and images on every page, it measures what issue 26
asked for: no Markdown output shown as raw pipe text; no unlinked "chapter N" or
"exercise N.M" in the prose; figure text of at least 9 CSS px on a 390 px phone; no
figure that is an opaque white slab in dark mode; a search button in view at
1400 px and search summaries without TeX; a print layout (the PDF's) that cuts no
code and prints no "Click to hide"; copy buttons on code only. Each check is also
run on a small page built to fail it, so that it is known to work.

Playwright drives Debian's Chromium (no browser download); the book is built once
per session into a temporary folder and served from 127.0.0.1; MathJax 3 comes
from a local package and every other remote request is refused (and fails the
test). Skipped, with the reason printed by pytest -ra, when Chromium or Playwright
is missing; the one build is then still made, and its warnings still fail
``test_book_builds_without_warnings``.
"""

from __future__ import annotations

import importlib.util
import io
import re
import shutil
import urllib.parse

import pytest

from conftest import ROOT, browser_kit

bk = browser_kit()  # shared with the other browser test file
_spec = importlib.util.spec_from_file_location(
    "course_pdf", ROOT / "scripts" / "pdf.py"
)
pdf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pdf)

pytestmark = pytest.mark.book

CHAPTER = "notebooks/03_vhp_hvp_toy.html"
NEXT_CHAPTER = "04_jacobians.html"  # a sidebar link that must become reachable
TOLERANCE_PX = 1


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """(html folder, build log) of the book, built once per session like `make book`."""
    return bk.build_book(tmp_path_factory.mktemp("browser-book"))


def test_book_builds_without_warnings(built):
    """`make book`'s build (-W -n --keep-going) passes; no browser needed."""
    html, log = built
    assert "WARNING" not in log and "exited with" not in log, log[-6000:]
    index = (html / "book" / "intro.html").read_text()
    assert "Second-order autodiff in PyTorch" in index
    chapter = (html / CHAPTER).read_text()
    assert "✓ vhp(pow_reducer) equals vᵀH" in chapter
    assert "solution-start" not in chapter and "exercise-start" not in chapter
    assert "dropdown" in chapter
    assert "colab" in chapter.lower()


@pytest.fixture(scope="session")
def site(built):
    """(base URL, html folder, browser) for the book built once per session."""
    if bk.missing() is not None:
        pytest.skip(f"browser test: {bk.missing()}")
    html = built[0]
    with bk.serve(html) as base, bk.browser() as browser:
        yield base, html, browser


def pages(html):
    """Every content page of the book, as paths relative to the html folder."""
    found = sorted(
        p.relative_to(html).as_posix()
        for folder in ("book", "notebooks")
        for p in (html / folder).glob("*.html")
    )
    assert CHAPTER in found, f"expected {CHAPTER} among the built pages, got {found}"
    return found


class Watch:
    """A browser context at one width that records what goes wrong on its pages."""

    def __init__(self, browser, width, typeset=True, **options):
        self.width = width
        self.typeset = typeset
        self.context = browser.new_context(
            viewport={"width": width, "height": 900}, **options
        )
        self.refused = bk.offline(self.context)
        if not typeset:  # MathJax becomes an empty script: the math stays TeX
            self.context.route(
                lambda url: url.startswith(bk.MATHJAX_CDN),
                lambda route: route.fulfill(body="", content_type="text/javascript"),
            )
        self._problems: list[str] = []
        self.aborted: list[tuple[str, str]] = []
        self.page = self.context.new_page()
        self.current = ""

        def console(message):
            if message.type == "error":
                self._problems.append(f"{self.current}: console error: {message.text}")

        def failed(request):
            # Chromium cancels a request (net::ERR_ABORTED) when a page moves on
            # before it finishes, e.g. the favicon of a page left at once: that is
            # no defect of the book, but a file missing from it is, so ask again.
            if "ERR_ABORTED" in (request.failure or ""):
                self.aborted.append((self.current, request.url))
                return
            self._problems.append(
                f"{self.current}: request failed: {request.url} ({request.failure})"
            )

        def response(resp):
            if resp.status >= 400:
                self._problems.append(f"{self.current}: HTTP {resp.status}: {resp.url}")

        self.page.on("console", console)
        self.page.on(
            "pageerror", lambda e: self._problems.append(f"{self.current}: {e}")
        )
        self.page.on("requestfailed", failed)
        self.page.on("response", response)

    def open(self, base, path):
        self.current = path
        self.page.goto(base + path, wait_until="load")
        if self.typeset:
            bk.wait_for_math(self.page)
        return self.page

    def leave(self):
        """Go to a blank page, then put back the screen media and this context's
        width, so the next page opens as a reader's would (restoring them on a
        long chapter would lay it out once more, for nothing)."""
        self.page.goto("about:blank")
        self.page.emulate_media(media="screen")
        self.page.set_viewport_size({"width": self.width, "height": 900})

    @property
    def problems(self) -> list[str]:
        """What went wrong so far; a cancelled request counts if its file is missing."""
        for where, url in self.aborted:
            status = self.context.request.get(url).status
            if status >= 400:
                self._problems.append(f"{where}: HTTP {status}: {url} (was cancelled)")
        self.aborted.clear()
        return self._problems

    def close(self):
        self.context.close()


@pytest.fixture
def desktop(site):
    watch = Watch(site[2], bk.WIDTHS["desktop"])
    yield watch
    watch.close()


@pytest.fixture
def phone(site):
    watch = Watch(site[2], bk.WIDTHS["phone"])
    yield watch
    watch.close()


@pytest.fixture
def dark_phone(site):
    # figures only: their size follows the column's width, not the math, which
    # test_every_page_renders_cleanly checks; typesetting it would triple the time
    watch = Watch(site[2], bk.WIDTHS["phone"], typeset=False, color_scheme="dark")
    yield watch
    watch.close()


IN_VIEW = """(els) => els.some((el) => {
    if (!el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true})) {
        return false;
    }
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && r.left >= 0 && r.right <= innerWidth
        && r.top < innerHeight && r.bottom > 0;
})"""


def nav_in_view(page):
    """Is the sidebar's link to the next chapter on screen (where a reader sees it)?"""
    links = page.locator(f'nav.bd-docs-nav a[href$="{NEXT_CHAPTER}"]')
    assert links.count() >= 1, f"expected a sidebar link to {NEXT_CHAPTER}, found none"
    return links.evaluate_all(IN_VIEW)


def visible_toggle(page):
    toggles = page.locator("button.primary-toggle")
    visible = [
        toggles.nth(i) for i in range(toggles.count()) if toggles.nth(i).is_visible()
    ]
    assert len(visible) == 1, (
        f"expected one visible navigation (primary sidebar) button, got {len(visible)}"
        f" of {toggles.count()}"
    )
    return visible[0]


def click_and_settle(page, locator):
    locator.click()
    page.wait_for_timeout(450)  # the sidebar's CSS transition


def test_navigation_opens_on_desktop(site, desktop):
    base = site[0]
    page = desktop.open(base, CHAPTER)
    problems = []
    if not nav_in_view(page):
        problems.append("expected the chapter list open at 1400 px, it is not")
    toggle = visible_toggle(page)
    click_and_settle(page, toggle)
    if nav_in_view(page):
        problems.append(
            "expected the navigation button to hide the chapter list at 1400 px; "
            "the click did nothing"
        )
    click_and_settle(page, toggle)
    if not nav_in_view(page):
        problems.append("expected a second click to show the chapter list again")
    search_fields = page.locator(".search-button-field").evaluate_all(
        "els => els.filter(e => e.checkVisibility()).length"
    )
    if search_fields > 1:
        problems.append(f"expected at most one search box, got {search_fields}")
    header = page.evaluate(
        "() => { const h = document.querySelector('header.bd-header');"
        " return h ? h.getBoundingClientRect().height : 0; }"
    )
    if header > TOLERANCE_PX:
        problems.append(f"expected no top band, got one {header:.0f} px high")
    problems += desktop.problems
    assert not problems, "\n".join(problems)


def test_navigation_opens_on_phone(site, phone):
    base = site[0]
    page = phone.open(base, CHAPTER)
    assert not nav_in_view(page), "expected the chapter list closed at 400 px"
    click_and_settle(page, visible_toggle(page))
    assert nav_in_view(page), (
        "expected the navigation button to open the chapter list at 400 px; "
        "the click did nothing"
    )
    page.keyboard.press("Escape")
    page.wait_for_timeout(300)
    assert not nav_in_view(page), "expected Escape to close the chapter list"
    assert not phone.problems, "\n".join(phone.problems)


PAGE_FACTS = """() => {
  const main = document.querySelector('main') || document.body;
  const text = (el) => (el.innerText || el.textContent || '').trim();
  return {
    title: document.title,
    mathErrors: Array.from(document.querySelectorAll(
        'mjx-merror, [data-mjx-error], .MathJax_Error')).map(
        (e) => e.getAttribute('data-mjx-error') || text(e)),
    unrendered: Array.from(main.querySelectorAll('.math, span.math, div.math'))
        .filter((e) => !e.querySelector('mjx-container'))
        .map((e) => text(e).slice(0, 80)),
    images: Array.from(document.images).map((i) => ({
        src: i.getAttribute('src'), alt: i.getAttribute('alt') || '',
        ok: i.complete && i.naturalWidth > 0})),
    links: Array.from(document.querySelectorAll('a[href]')).map((a) => a.href),
    // A cell's prints in one box (nb_merge_streams), not one box per print.
    splitStreams: Array.from(main.querySelectorAll('div.cell_output')).filter(
        (out) => out.querySelectorAll(':scope > .output.stream').length > 1).length,
    // Solution markers inside notebook code (the instructors' guide may quote them).
    markers: Array.from(main.querySelectorAll('div.cell pre')).some(
        (pre) => /#{3} *(BEGIN|END) SOLUTION/.test(pre.textContent)),
  };
}"""

FILE_ALT = re.compile(r"(^|/)[\w.-]+\.(png|jpe?g|svg|gif|webp)$|^\.\.?/|_images/", re.I)


def ids_of(path, cache={}):  # noqa: B006 - a deliberate per-session cache
    if path not in cache:
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        cache[path] = set(re.findall(r'\bid="([^"]+)"', text))
    return cache[path]


def test_every_page_renders_cleanly(site, desktop):
    """No console error, blocked request, MathJax error, broken link/image or file-path
    alt text on any page; solution dropdowns open; solution markers are hidden; a
    cell's prints share one box; nothing overflows a 390 px screen; no raw pipe
    table in an output; no unlinked chapter or exercise reference; copy buttons on
    code only; the print layout (the PDF's) cuts no code and shows no toggle labels."""
    base, html, _ = site
    problems = []
    for path in pages(html):
        page = desktop.open(base, path)
        facts = page.evaluate(PAGE_FACTS)
        for error in sorted(set(facts["mathErrors"])):
            count = facts["mathErrors"].count(error)
            problems.append(f"{path}: MathJax error ({count}x): {error}")
        for math in facts["unrendered"]:
            problems.append(f"{path}: math left untypeset: {math}")
        for image in facts["images"]:
            if not image["ok"]:
                problems.append(f"{path}: image does not load: {image['src']}")
            if not image["alt"].strip() or FILE_ALT.search(image["alt"].strip()):
                problems.append(
                    f"{path}: image {image['src']} has alt text {image['alt']!r}; "
                    "expected a description (mystnb: image: alt: in the cell)"
                )
        for link in facts["links"]:
            if not link.startswith(base):
                continue
            parsed = urllib.parse.urlsplit(link[len(base) :])
            target = html / urllib.parse.unquote(parsed.path or path)
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                problems.append(f"{path}: broken link to {link[len(base) :]}")
            elif parsed.fragment and parsed.fragment not in ids_of(target):
                problems.append(f"{path}: link to a missing anchor {link[len(base) :]}")
        problems += check_solutions(page, path)
        if facts["splitStreams"]:
            problems.append(
                f"{path}: {facts['splitStreams']} cell(s) show their prints in "
                "several output boxes (nb_merge_streams)"
            )
        if facts["markers"]:
            problems.append(f"{path}: a ### BEGIN/END SOLUTION line shows in the book")
        problems += [f"{path}: {p}" for p in page.evaluate(RAW_PIPES)]
        problems += [f"{path}: {p}" for p in page.evaluate(UNLINKED)]
        problems += [f"{path}: {p}" for p in page.evaluate(COPY_BUTTONS)]
        # Narrow, then print: each lays the page out once more; leaving the page
        # before the desktop layout is restored spares a third layout of it.
        problems += overflow_at_phone_width(page, path)
        problems += print_layout(page, path)
        desktop.leave()
    problems += desktop.problems
    problems += [f"remote request refused: {url}" for url in desktop.refused]
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:60])


SOLUTIONS = """(action) => Array.from(
    document.querySelectorAll('.solution.dropdown')).map((solution) => {
  const body = solution.querySelector('section, .admonition-body, .dropdown-content');
  if (action === 'click') {
    const title = solution.querySelector('.admonition-title, summary, button');
    if (title) title.click();
  }
  if (!body) return null;
  const r = body.getBoundingClientRect();
  return body.checkVisibility({visibilityProperty: true, opacityProperty: true})
      && r.width > 0 && r.height > 0;
})"""


def check_solutions(page, path):
    """Each solution dropdown starts closed and opens on a click on its title."""
    before = page.evaluate(SOLUTIONS, "look")
    if not before:
        return []
    page.evaluate(SOLUTIONS, "click")
    page.wait_for_timeout(400)  # the dropdown's animation
    after = page.evaluate(SOLUTIONS, "look")
    problems = []
    for i, (closed, opened) in enumerate(zip(before, after, strict=True), start=1):
        if closed is None:
            problems.append(f"{path}: solution {i} has no body")
        elif closed:
            problems.append(f"{path}: solution {i} is open before a click")
        elif not opened:
            problems.append(f"{path}: solution {i} does not open on a click")
    return problems


OVERFLOW = """() => {
  const root = document.querySelector('article.bd-article') || document.body;
  const limit = innerWidth + TOLERANCE;
  const clips = (el) =>
    ['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(el).overflowX);
  const name = (el) => el.tagName.toLowerCase() +
    (typeof el.className === 'string' && el.className.trim()
      ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
  const bad = [];
  const reported = new Set();
  for (const el of root.querySelectorAll('*')) {
    if (!el.checkVisibility()) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.right <= limit) continue;
    let box = el.parentElement, contained = false;
    while (box && box !== document.body) {
      if (reported.has(box)) { contained = true; break; }
      if (clips(box) && box.getBoundingClientRect().right <= limit) {
        contained = true; break;
      }
      box = box.parentElement;
    }
    if (contained) continue;
    reported.add(el);
    const text = (el.innerText || el.textContent || '').trim().split('\\n')[0];
    bad.push(`${name(el)} ends at ${Math.round(r.right)} px: ${text.slice(0, 60)}`);
  }
  return {bad, scrollWidth: document.scrollingElement.scrollWidth};
}""".replace("TOLERANCE", str(TOLERANCE_PX))


def overflow_at_phone_width(page, path):
    """At 390 px nothing in the main content sticks out, except inside a box that
    scrolls on its own (code, outputs, wide math, tables). The page is resized in
    place (its layout follows the width through CSS) rather than loaded again, and
    left at that width (``Watch.leave`` restores it)."""
    width = bk.WIDTHS["phone"]
    page.set_viewport_size({"width": width, "height": 900})
    page.wait_for_timeout(100)
    facts = page.evaluate(OVERFLOW)
    problems = []
    if facts["scrollWidth"] > width + TOLERANCE_PX:
        problems.append(
            f"{path}: at {width} px the page is {facts['scrollWidth']} px wide"
        )
    # The outermost offenders only (their children would repeat them).
    problems += [f"{path}: at {width} px, {line}" for line in facts["bad"][:5]]
    return problems


def test_titles_and_chapter_map(site, desktop):
    """The landing tab title does not repeat the book's name; the chapter map on the
    landing page names each chapter as the sidebar does; there is a favicon."""
    base = site[0]
    page = desktop.open(base, "book/intro.html")
    title = page.title()
    name = page.locator(".navbar-brand").first.inner_text().strip() or "Second-order"
    assert title.count(name) <= 1, f"expected the book name once in {title!r}"
    icon = page.locator('link[rel~="icon"]')
    assert icon.count() >= 1, "expected a favicon link in the page head, found none"
    sidebar = {
        a.split("#")[0]: t.strip()
        for a, t in page.locator("nav.bd-docs-nav a.reference.internal").evaluate_all(
            "els => els.map(e => [e.getAttribute('href'), e.innerText])"
        )
    }
    mapped = page.locator("table a.reference.internal").evaluate_all(
        "els => els.map(e => [e.getAttribute('href'), e.innerText])"
    )
    assert mapped, "expected chapter links in the landing page's chapter map"
    mismatched = [
        f"{href}: map {text.strip()!r}, sidebar {sidebar.get(href.split('#')[0])!r}"
        for href, text in mapped
        if sidebar.get(href.split("#")[0]) != text.strip()
    ]
    assert not mismatched, "chapter map titles differ from the sidebar:\n" + "\n".join(
        mismatched
    )
    assert not desktop.problems, "\n".join(desktop.problems)


# ---------------------------------------------------------------- issue 26 checks

# A Markdown table shown as text: a line of output (outside a real table) that
# starts and ends with "|" and has a cell border in between.
RAW_PIPES = """(root) => {
  root = root || document;
  const found = [];
  for (const out of root.querySelectorAll('div.cell_output')) {
    const copy = out.cloneNode(true);
    copy.querySelectorAll('table').forEach((t) => t.remove());
    for (const line of (copy.textContent || '').split('\\n')) {
      if (/^\\s*\\|.*\\|.*\\|\\s*$/.test(line)) {
        found.push('raw pipe text in an output: ' + line.trim().slice(0, 70));
        break;
      }
    }
  }
  return found;
}"""

# "chapter 3" or "exercise 10.1" in prose that is not a link. Code, outputs, math
# and the exercise/solution titles that sphinx-exercise writes are not prose.
UNLINKED = """(root) => {
  root = root || document.querySelector('article.bd-article') || document.body;
  const SKIP = 'a, code, pre, kbd, script, style, .cell_input, .cell_output, '
    + 'mjx-container, .math, .exercise > .admonition-title, '
    + '.solution > .admonition-title, .toctree-wrapper, nav, .headerlink';
  const REF = /\\b(chapters?|exercises?)\\s+\\d+(\\.\\d+)?\\b/i;
  const found = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const m = node.textContent.match(REF);
    if (!m || node.parentElement.closest(SKIP)) continue;
    found.push(`unlinked "${m[0]}": ` + node.textContent.trim().slice(0, 70));
  }
  return found;
}"""

COPY_BUTTONS = """() => {
  const n = document.querySelectorAll('div.cell_output button.copybtn').length;
  return n ? [`${n} copy button(s) on outputs (copy buttons are for code)`] : [];
}"""

# For each figure image: the smallest text it shows, in CSS px at its rendered
# width. SVG: each <text>'s font size (its largest tspan: a subscript belongs to
# its label) times rendered width / viewBox width. PNG: matplotlib's default 10 pt
# text at the resolution the PNG records (pHYs), scaled the same way.
FIGURE_TEXT = """async (selector) => {
  const size = (el) => {
    for (let e = el; e && e.getAttribute; e = e.parentNode) {
      const style = e.getAttribute('style') || '';
      const m = style.match(/font-size:\\s*([\\d.]+)px/) ||
                style.match(/font:[^;]*?([\\d.]+)px/);
      if (m) return parseFloat(m[1]);
      if (e.getAttribute('font-size')) return parseFloat(e.getAttribute('font-size'));
    }
    return 0;
  };
  const out = [];
  for (const img of document.querySelectorAll(selector)) {
    const r = img.getBoundingClientRect();
    if (!r.width) continue;
    const src = img.currentSrc || img.src;
    const bytes = new Uint8Array(await (await fetch(src)).arrayBuffer());
    const head = new TextDecoder().decode(bytes.slice(0, 400));
    let smallest = null, kind = 'other';
    if (head.includes('<svg')) {
      kind = 'svg';
      const doc = new DOMParser().parseFromString(
          new TextDecoder().decode(bytes), 'image/svg+xml');
      const svg = doc.documentElement;
      const vb = (svg.getAttribute('viewBox') || '').split(/[\\s,]+/).map(Number);
      const vbw = vb.length === 4 ? vb[2] : parseFloat(svg.getAttribute('width'));
      for (const t of doc.querySelectorAll('text')) {
        const text = t.textContent.trim();
        if (!text) continue;
        const sizes = [t, ...t.querySelectorAll('tspan')].map(size).filter((s) => s);
        if (!sizes.length) continue;
        const px = Math.max(...sizes) * r.width / vbw;
        if (!smallest || px < smallest.px) smallest = {px, text: text.slice(0, 30)};
      }
    } else if (bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) {
      kind = 'png';
      let dpi = 72;  // a PNG that records no resolution
      for (let i = 8; i + 8 < bytes.length;) {
        const len = (bytes[i] << 24 | bytes[i + 1] << 16 | bytes[i + 2] << 8
                     | bytes[i + 3]) >>> 0;
        const type = String.fromCharCode(...bytes.slice(i + 4, i + 8));
        if (type === 'pHYs') {
          const ppm = (bytes[i + 8] << 24 | bytes[i + 9] << 16 | bytes[i + 10] << 8
                       | bytes[i + 11]) >>> 0;
          dpi = ppm * 0.0254;
          break;
        }
        if (type === 'IDAT') break;
        i += 12 + len;
      }
      smallest = {px: 10 * dpi / 72 * r.width / img.naturalWidth,
                  text: `raster, 10 pt assumed at ${Math.round(dpi)} dpi`};
    }
    out.push({src: src.split('/').pop(), kind, width: Math.round(r.width), smallest});
  }
  return out;
}"""
FIGURES = "article div.cell_output img, article figure img"
MIN_FIGURE_TEXT_PX = 9.0


def small_figure_text(page, path, selector=FIGURES, count=False):
    """Figures whose smallest text is under 9 CSS px (with ``count``, also how many
    figures were measured)."""
    problems = []
    figures = page.evaluate(FIGURE_TEXT, selector)
    for fig in figures:
        small = fig["smallest"]
        if small is None:
            if fig["kind"] != "svg":
                problems.append(f"{path}: figure {fig['src']} ({fig['kind']}): no text")
            continue
        if small["px"] < MIN_FIGURE_TEXT_PX:
            problems.append(
                f"{path}: figure {fig['src']} ({fig['kind']}, {fig['width']} px wide): "
                f"text {small['text']!r} is {small['px']:.1f} CSS px at "
                f"{bk.WIDTHS['phone']} px; expected >= {MIN_FIGURE_TEXT_PX}"
            )
    return (len(figures), problems) if count else problems


# Each figure's own corners (drawn on a canvas): an opaque near-white corner is a
# white background, which dark mode would show as a slab.
FIGURE_CORNERS = """async (selector) => {
  const out = [];
  for (const img of document.querySelectorAll(selector)) {
    if (!img.naturalWidth) continue;
    const c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const ctx = c.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const w = c.width - 2, h = c.height - 2;
    const corners = [[1, 1], [w, 1], [1, h], [w, h]].map(
        ([x, y]) => Array.from(ctx.getImageData(x, y, 1, 1).data));
    const white = corners.filter(([r, g, b, a]) => a > 200 && r > 225 && g > 225
                                 && b > 225).length;
    const box = img.getBoundingClientRect();
    out.push({src: (img.currentSrc || img.src).split('/').pop(), white,
              box: {x: box.x + window.scrollX, y: box.y + window.scrollY,
                    width: box.width, height: box.height}});
  }
  return out;
}"""


def white_slabs(page, path, selector=FIGURES):
    """Figures with an opaque white background, and figures that show bright on
    the dark page (measured on a screenshot of the rendered figure's corner)."""
    from PIL import Image, ImageStat

    problems = []
    for fig in page.evaluate(FIGURE_CORNERS, selector):
        if fig["white"] >= 3:
            problems.append(
                f"{path}: figure {fig['src']} has an opaque white background "
                "(draw it on a transparent one: helpers.figures.use_course_style)"
            )
        box = fig["box"]
        if box["width"] < 20 or box["height"] < 20:
            continue
        # Scroll the figure's corner into view and photograph 12 x 12 px of it (a
        # full-page screenshot of a long chapter would take seconds each).
        page.evaluate(f"() => window.scrollTo(0, {max(0, box['y'] - 100)})")
        top = page.evaluate("() => window.scrollY")
        clip = {"x": box["x"] + 2, "y": box["y"] - top + 2, "width": 12, "height": 12}
        shot = Image.open(io.BytesIO(page.screenshot(clip=clip)))
        mean = ImageStat.Stat(shot.convert("L")).mean[0]
        if mean > 160:
            problems.append(
                f"{path}: figure {fig['src']} shows as a bright slab in dark mode "
                f"(corner brightness {mean:.0f} of 255)"
            )
    return problems


def print_layout(page, path):
    """The page as the PDF prints it (print media, the A4 text width): no code cut
    at the right, no "Click to hide". The page is left in print layout
    (``Watch.leave`` restores the screen)."""
    pdf.prepare_for_print(page, solutions=True)
    return [f"{path}: print: {p}" for p in pdf.print_problems(page)[:5]]


def figure_pages(html):
    return [
        p
        for p in pages(html)
        if "<img" in (html / p).read_text(encoding="utf-8")
        and "_images/" in (html / p).read_text(encoding="utf-8")
    ]


def test_figures_readable_on_a_phone_and_in_dark_mode(site, dark_phone, tmp_path):
    """At 390 px every figure's text is at least 9 CSS px, and in dark mode no figure
    is a white slab. The same checks fail on the 100-dpi PNG chapter 10 showed
    before this round, and on an SVG drawn 11 inches wide at 10 pt."""
    base, html, browser = site
    problems, measured = [], 0
    for path in figure_pages(html):
        page = dark_phone.open(base, path)
        found, text_problems = small_figure_text(page, path, count=True)
        measured += found
        problems += text_problems
        problems += white_slabs(page, path)
    problems += dark_phone.problems
    assert measured, "expected figures in the book, measured none"

    # The checks on pages built to fail them.
    demo = tmp_path / "demo"
    demo.mkdir()
    shutil.copy(
        ROOT / "tests" / "data" / "old_ch10_spectra_100dpi.png", demo / "old.png"
    )
    (demo / "wide.svg").write_text(wide_small_svg())
    (demo / "index.html").write_text(
        '<html><body style="background:#121212"><article class="bd-article">'
        '<div class="cell_output"><img src="old.png" style="max-width:100%"></div>'
        '<div class="cell_output"><img src="wide.svg" style="max-width:100%"></div>'
        "</article></body></html>"
    )
    with bk.serve(demo) as demo_base:
        context = browser.new_context(
            viewport={"width": bk.WIDTHS["phone"], "height": 900}
        )
        page = context.new_page()
        page.goto(demo_base + "index.html", wait_until="load")
        caught_text = small_figure_text(page, "demo")
        caught_white = white_slabs(page, "demo")
        context.close()
    assert any("old.png" in p and "raster" in p for p in caught_text), caught_text
    assert any("wide.svg" in p for p in caught_text), caught_text
    assert any("old.png" in p and "opaque white" in p for p in caught_white), (
        caught_white
    )
    assert any("bright slab" in p for p in caught_white), caught_white
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:40])


def wide_small_svg() -> str:
    """An SVG figure 11 inches wide with matplotlib's default 10 pt text on white,
    the shape of chapter 10's old two-panel figure."""
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context({"svg.fonttype": "none", "font.size": 10}):
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for ax in axes:
            ax.plot([1, 2, 3], [3, 1, 2], label="eigenvalues")
            ax.set_xlabel("index")
            ax.legend()
        out = io.StringIO()
        fig.savefig(out, format="svg", facecolor="white")
        plt.close(fig)
    return out.getvalue()


def test_the_page_checks_catch_what_they_look_for(site, desktop):
    """Raw pipe tables, unlinked references, copy buttons on outputs, cut code and
    toggle labels, each on a fragment built to have them."""
    page = desktop.open(site[0], CHAPTER)
    page.evaluate(
        """() => {
        const a = document.querySelector('article.bd-article');
        a.insertAdjacentHTML('beforeend',
          '<div class="cell_output" id="demo-out"><div class="output text_markdown">'
          + '<p>| scalar, n = 2000 | time |\\n| — | — |\\n| hvp | 2.1× |</p>'
          + '<button class="copybtn">copy</button></div></div>'
          + '<p id="demo-ref">As chapter 3 showed, and <a href="#">chapter 4</a>; '
          + 'see exercise 10.1.</p>'
          + '<div class="highlight"><pre id="demo-pre" style="white-space:pre;'
          + 'overflow:hidden">' + 'x = torch.zeros(3, dtype=torch.float64) '.repeat(6)
          + '</pre></div><button class="demo-toggle">Click to hide</button>');
      }"""
    )
    pipes = page.evaluate(RAW_PIPES)
    refs = page.evaluate(UNLINKED)
    copies = page.evaluate(COPY_BUTTONS)
    page.add_style_tag(
        content="@media print { #demo-pre { white-space: pre !important; "
        "overflow: hidden !important; } .demo-toggle { display: inline !important; } }"
    )
    printed = print_layout(page, "demo")
    assert pipes and "scalar, n = 2000" in pipes[0], pipes
    assert [r.split(":")[0] for r in refs] == [
        'unlinked "chapter 3"',
        'unlinked "exercise 10.1"',
    ], refs
    assert copies, "expected the copy button on an output to be found"
    assert any("code cut" in p for p in printed), printed
    assert any("Click to hide" in p for p in printed), printed


def test_search_in_view_on_desktop_and_summaries_without_tex(site, desktop):
    """At 1400 px a search button is on screen on a chapter far down the list (the
    sidebar scrolls to it); it opens the search; results show no raw TeX."""
    base = site[0]
    page = desktop.open(base, "notebooks/12_which_method_when.html")
    page.wait_for_timeout(300)  # the sidebar scrolls itself to the current chapter
    search = page.locator(".search-button__button, .search-button-field")

    def search_in_view():
        return search.evaluate_all(IN_VIEW)

    assert search_in_view(), "expected a search button on screen at 1400 px"
    button = page.locator(".bd-header-article .search-button__button").first
    button.click()
    field = page.locator("#pst-search-dialog input, .search-button__wrapper input")
    field.first.wait_for(state="visible", timeout=5000)
    field.first.fill("eigenvalues")
    field.first.press("Enter")
    page.wait_for_url("**/search.html?**", timeout=10000)
    page.wait_for_selector("#search-results li p.context", timeout=20000)
    page.wait_for_timeout(1500)  # more summaries arrive one page at a time
    summaries = page.locator("#search-results li p.context").all_inner_texts()
    tex = [
        s[:80] for s in summaries if re.search(r"\\\(|\\\[|\\math|\\operatorname", s)
    ]
    assert summaries, "expected search results with summaries for 'eigenvalues'"
    assert not tex, f"search summaries show raw TeX: {tex}"
    plain = page.evaluate(r"() => courseStripTeX('of \\(\\mathbf v_1, \\dots\\) here')")
    assert plain == "of v_1, … here", plain

    # Today's theme rule (search button hidden above 992 px) and a scrolled sidebar:
    # the check must see that no search is in view.
    page = desktop.open(base, "notebooks/12_which_method_when.html")
    page.add_style_tag(
        content="html body .bd-header-article .article-header-buttons"
        " .search-button.search-button__button { display: none !important; }"
    )
    page.evaluate(
        "() => { const s = document.querySelector('.bd-sidebar-primary');"
        " s.scrollTop = s.scrollHeight; }"
    )
    page.wait_for_timeout(100)
    assert not search_in_view(), "expected the check to fail with the button hidden"
    assert not desktop.problems, "\n".join(desktop.problems)


def test_pdf_prints_whole_code_and_no_toggle_labels(site, tmp_path):
    """A chapter printed as `make pdf` prints the book: code wraps instead of being
    cut, no toggle labels, solutions in by default and out with omit; the PDF is
    written. The landing page links the file `make pdf` writes."""
    base, html, browser = site
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    bk.offline(context)
    page = context.new_page()
    page.goto(base + "notebooks/12_which_method_when.html", wait_until="load")
    bk.wait_for_math(page)
    solutions = pdf.prepare_for_print(page, solutions=True)
    problems = pdf.print_problems(page)
    shown = page.evaluate(
        "() => Array.from(document.querySelectorAll('.solution'))"
        ".filter(s => s.checkVisibility() && s.innerText.includes('assert')).length"
    )
    out = tmp_path / "chapter.pdf"
    pdf.print_pdf(page, out)
    pdf.prepare_for_print(page, solutions=False)
    hidden = page.evaluate(
        "() => Array.from(document.querySelectorAll('.solution'))"
        ".filter(s => s.checkVisibility()).length"
    )
    context.close()
    assert not problems, "\n".join(problems)
    assert solutions and shown == solutions, f"{shown} of {solutions} solutions print"
    assert hidden == 0, f"{hidden} solutions print with --solutions omit"
    assert out.read_bytes()[:5] == b"%PDF-", "expected a PDF"
    assert pdf.page_count(out) >= 5, f"expected pages, got {pdf.page_count(out)}"
    makefile = (ROOT / "Makefile").read_text()
    name = pdf.DEFAULT_OUT.name
    assert re.search(
        rf"^pdf:.*\n(\t.*\n)*\t.*downloads/{re.escape(name)}", makefile, re.M
    )
    intro = (ROOT / "book" / "intro.md").read_text()
    assert f"downloads/{name}" in intro, "expected the landing page to link the PDF"


def test_landing_page_footer_citation_and_assets(site, desktop):
    """Footer: version and build date; "Cite this course" from CITATION.cff; an
    issues link; author-year bibliography labels with a DOI or URL each; no
    fontawesome.js (icons still drawn), MathJax only where there is math; a 404
    page."""
    import yaml

    base, html, _ = site
    requests = []
    desktop.page.on("request", lambda r: requests.append(r.url))
    page = desktop.open(base, "book/intro.html")
    problems = []
    footer = page.locator("footer").all_inner_texts()
    if not any(re.search(r"Version \S+, built \d{4}-\d\d-\d\d", f) for f in footer):
        problems.append(f"footer without version and build date: {footer}")
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    cite = page.locator("#cite-this-course").inner_text()
    for want in (cff["title"], cff["version"], "@software"):
        if want not in cite:
            problems.append(f"'Cite this course' lacks {want!r}")
    if not page.locator('a[href*="/issues/new"]').count():
        problems.append("expected an 'open an issue' link")
    if any("fontawesome.js" in u for u in requests):
        problems.append("fontawesome.js still loads (the web font draws the icons)")
    if any("mathjax" in u.lower() for u in requests):
        problems.append("the landing page (no math) loads MathJax")
    icon = page.locator(".fa-github, .fa-brands").first
    if not icon.count() or icon.evaluate("e => e.getBoundingClientRect().width") < 4:
        problems.append("the GitHub icon is not drawn")
    requests.clear()
    page = desktop.open(base, CHAPTER)
    if not any("mathjax" in u.lower() for u in requests):
        problems.append(f"{CHAPTER} has math but loads no MathJax")
    page = desktop.open(base, "book/bibliography.html")
    entries = page.locator("div.citation").all_inner_texts()
    linked = set(bib_keys_with_links())
    for entry in entries:
        label = entry.split("]")[0]
        if not re.search(r"\[\D+ \d{4}[a-z]?$", label):
            problems.append(f"bibliography label not author-year: {label!r}")
    shown = len(page.locator("div.citation a[href^='http']").all())
    if shown < len(linked):
        problems.append(
            f"{len(linked)} references have a DOI or URL, {shown} show a link"
        )
    if not entries:
        problems.append("expected entries on the bibliography page")
    missing = (html / "404.html").read_text() if (html / "404.html").is_file() else ""
    if "Page not found" not in missing or "<base href=" not in missing:
        problems.append("expected a 404.html with a <base> for its links")
    problems += desktop.problems
    assert not problems, "\n".join(problems)


def bib_keys_with_links():
    """Keys of book/references.bib entries with a doi or url field. An article or
    proceedings paper without either fails: look its DOI up (books and chapters of
    books published before DOIs may have none)."""
    text = (ROOT / "book" / "references.bib").read_text(encoding="utf-8")
    entries = re.findall(r"@(\w+)\{([^,]+),(.*?)\n\}", text, re.S)
    missing = [
        key
        for kind, key, body in entries
        if kind.lower() in ("article", "inproceedings")
        and not re.search(r"^\s*(doi|url)\s*=", body, re.M)
    ]
    assert not missing, f"papers without a DOI or URL in references.bib: {missing}"
    return [
        key for _, key, body in entries if re.search(r"^\s*(doi|url)\s*=", body, re.M)
    ]


def test_wide_equations_show_a_scroll_hint(site, phone):
    """At 390 px an equation wider than the column scrolls in its box and says so."""
    base, html, _ = site
    hinted, wide = 0, 0
    for path in (
        "notebooks/03_vhp_hvp_toy.html",
        "notebooks/10_curvature_spectra.html",
    ):
        page = phone.open(base, path)
        page.evaluate("() => window.courseMarkWideMath && courseMarkWideMath()")
        facts = page.evaluate(
            """() => Array.from(document.querySelectorAll(
                'mjx-container[display="true"], div.math, div.output.math'))
              .filter(b => b.scrollWidth > b.clientWidth + 1
                && !b.querySelector('mjx-container[display="true"]'))
              .map(b => b.classList.contains('course-scrolls')
                && !!b.nextElementSibling
                && b.nextElementSibling.classList.contains('course-scroll-hint'))"""
        )
        wide += len(facts)
        hinted += sum(facts)
    assert wide, "expected at least one equation wider than a 390 px phone"
    assert hinted == wide, f"{wide - hinted} of {wide} wide equations have no hint"
