"""The built book in a real browser: what a reader on a desktop or a phone sees.

Playwright drives Debian's Chromium (no browser download); the book is built once
per session into a temporary folder and served from 127.0.0.1; MathJax 3 comes
from a local package and every other remote request is refused (and fails the
test). Skipped, with the reason printed by pytest -ra, when Chromium or Playwright
is missing.
"""

from __future__ import annotations

import re
import urllib.parse

import pytest

from conftest import browser_kit

bk = browser_kit()  # shared with the other browser test file

pytestmark = [
    pytest.mark.book,
    pytest.mark.skipif(
        bk.missing() is not None, reason=f"browser test: {bk.missing()}"
    ),
]

CHAPTER = "notebooks/03_vhp_hvp_toy.html"
NEXT_CHAPTER = "04_jacobians.html"  # a sidebar link that must become reachable
TOLERANCE_PX = 1


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    """(base URL, html folder, browser) for the book built once per session."""
    html = bk.build_book(tmp_path_factory.mktemp("browser-book"))
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

    def __init__(self, browser, width):
        self.context = browser.new_context(viewport={"width": width, "height": 900})
        self.refused = bk.offline(self.context)
        self.problems: list[str] = []
        self.page = self.context.new_page()
        self.current = ""

        def console(message):
            if message.type == "error":
                self.problems.append(f"{self.current}: console error: {message.text}")

        def failed(request):
            self.problems.append(
                f"{self.current}: request failed: {request.url} ({request.failure})"
            )

        def response(resp):
            if resp.status >= 400:
                self.problems.append(f"{self.current}: HTTP {resp.status}: {resp.url}")

        self.page.on("console", console)
        self.page.on(
            "pageerror", lambda e: self.problems.append(f"{self.current}: {e}")
        )
        self.page.on("requestfailed", failed)
        self.page.on("response", response)

    def open(self, base, path):
        self.current = path
        self.page.goto(base + path, wait_until="load")
        bk.wait_for_math(self.page)
        return self.page

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
    cell's prints share one box; nothing overflows a 400 px screen."""
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
        problems += overflow_at_phone_width(page, path)
        if facts["splitStreams"]:
            problems.append(
                f"{path}: {facts['splitStreams']} cell(s) show their prints in "
                "several output boxes (nb_merge_streams)"
            )
        if facts["markers"]:
            problems.append(f"{path}: a ### BEGIN/END SOLUTION line shows in the book")
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
    """At 400 px nothing in the main content sticks out, except inside a box that
    scrolls on its own (code, outputs, wide math, tables). The page is resized in
    place (its layout follows the width through CSS) rather than loaded again."""
    width = bk.WIDTHS["phone"]
    page.set_viewport_size({"width": width, "height": 900})
    page.wait_for_timeout(100)
    facts = page.evaluate(OVERFLOW)
    page.set_viewport_size({"width": bk.WIDTHS["desktop"], "height": 900})
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
