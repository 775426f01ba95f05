// Course script for the book (book/_static/course.js, listed in _config.yml).
//
// The notebooks mark each exercise's solution with "### BEGIN SOLUTION" and
// "### END SOLUTION" comment lines: nbgrader and the student bundle cut the
// solution out between them. In the book they are noise, so this removes those
// two comment lines (and their line breaks) from rendered code blocks. The
// notebooks keep them.
(function () {
  "use strict";
  const MARKER = /^\s*#{3}\s*(BEGIN|END) SOLUTION\s*$/;

  // Remove the text `count` characters from the start or end of a node.
  function trim(node, count, atStart) {
    const s = node.textContent;
    node.textContent = atStart ? s.slice(count) : s.slice(0, s.length - count);
    if (!node.textContent && node.parentNode) node.parentNode.removeChild(node);
  }

  function dropMarkerLines(pre) {
    for (const span of Array.from(pre.querySelectorAll("span"))) {
      if (span.children.length || !MARKER.test(span.textContent)) continue;
      // Indentation before the marker, on the same line.
      let prev = span.previousSibling;
      while (prev && /^[ \t]+$/.test(prev.textContent)) {
        const before = prev.previousSibling;
        prev.parentNode.removeChild(prev);
        prev = before;
      }
      if (prev && /[ \t]+$/.test(prev.textContent)) {
        trim(prev, prev.textContent.match(/[ \t]+$/)[0].length, false);
      }
      // The line break after the marker, or before it on the block's last line.
      const next = span.nextSibling;
      if (next && next.textContent.startsWith("\n")) {
        trim(next, 1, true);
      } else if (prev && prev.textContent.endsWith("\n")) {
        trim(prev, 1, false);
      }
      span.parentNode.removeChild(span);
    }
  }

  function run() {
    // Notebook code cells only: a page that quotes the markers keeps them.
    document.querySelectorAll("div.cell div.cell_input pre").forEach(dropMarkerLines);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", run);
  } else {
    run();
  }
})();

// Figures enlarge on a tap or click: a full-screen view of the image, closed by a
// tap, Escape or its close button.
(function () {
  "use strict";
  const FIGURES = "div.cell_output img, figure img";

  function open(img) {
    const view = document.createElement("div");
    view.className = "course-zoom";
    view.setAttribute("role", "dialog");
    view.setAttribute("aria-label", "Enlarged figure");
    const big = document.createElement("img");
    big.src = img.currentSrc || img.src;
    big.alt = img.alt;
    const close = document.createElement("button");
    close.type = "button";
    close.textContent = "✕";
    close.setAttribute("aria-label", "Close the enlarged figure");
    view.append(close, big);
    const shut = () => {
      view.remove();
      document.removeEventListener("keydown", onKey);
      img.focus();
    };
    const onKey = (e) => {
      if (e.key === "Escape") shut();
    };
    view.addEventListener("click", shut);
    document.addEventListener("keydown", onKey);
    document.body.appendChild(view);
    close.focus();
  }

  function run() {
    document.querySelectorAll(FIGURES).forEach((img) => {
      if (img.closest("a")) return; // an image that is a link keeps its link
      img.classList.add("course-zoomable");
      img.tabIndex = 0;
      img.title = img.title || "Enlarge (click or tap)";
      img.addEventListener("click", () => open(img));
      img.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          open(img);
        }
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", run);
  } else {
    run();
  }
})();

// Wide display equations scroll inside their box (course.css); this marks the ones
// that do, so that CSS draws a shadow at the edge with more to see, and adds a
// one-line hint under them. Re-checked when MathJax finishes and on resize.
(function () {
  "use strict";
  const BOXES = 'mjx-container[display="true"], div.math, div.output.math';

  function mark() {
    document.querySelectorAll(BOXES).forEach((box) => {
      const wide = box.scrollWidth > box.clientWidth + 1;
      // The innermost box that scrolls gets the hint; its parents need none.
      const inner = wide && !Array.from(box.querySelectorAll(BOXES)).some(
        (child) => child.scrollWidth > child.clientWidth + 1);
      box.classList.toggle("course-scrolls", inner);
      const next = box.nextElementSibling;
      const hinted = next && next.classList.contains("course-scroll-hint");
      if (inner && !hinted) {
        const hint = document.createElement("span");
        hint.className = "course-scroll-hint";
        hint.textContent = "wide equation: scroll sideways ⇢";
        box.after(hint);
      } else if (!inner && hinted) {
        next.remove();
      }
    });
  }

  let pending = 0;
  function later() {
    clearTimeout(pending);
    pending = setTimeout(mark, 150);
  }

  function run() {
    if (window.MathJax && window.MathJax.startup && window.MathJax.startup.promise) {
      window.MathJax.startup.promise.then(mark);
    } else {
      mark();
    }
    window.addEventListener("resize", later);
    window.addEventListener("load", later);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", run);
  } else {
    run();
  }
  window.courseMarkWideMath = mark; // for the browser test
})();

// Search results: Sphinx builds each result's summary from the page's HTML, where
// math is still TeX source ("\(\mathbf v_1, \dots\)"). Show it as plain text.
(function () {
  "use strict";
  const SYMBOLS = {
    dots: "…", ldots: "…", cdots: "⋯", cdot: "·", times: "×", top: "ᵀ",
    nabla: "∇", partial: "∂", lambda: "λ", mu: "μ", sigma: "σ", theta: "θ",
    alpha: "α", beta: "β", le: "≤", leq: "≤", ge: "≥", geq: "≥", approx: "≈",
    in: "∈", to: "→", sum: "∑", infty: "∞", ne: "≠", neq: "≠",
  };

  function plainMath(tex) {
    return tex
      .replace(/\\([A-Za-z]+)/g, (_, name) => (name in SYMBOLS ? SYMBOLS[name] : ""))
      .replace(/\\[,;:! ]/g, " ")
      .replace(/[{}]/g, "")
      .replace(/\s+/g, " ")
      .trim();
  }

  function stripTeX(text) {
    return text
      .replace(/\\\(([\s\S]*?)\\\)/g, (_, m) => plainMath(m))
      .replace(/\\\[([\s\S]*?)\\\]/g, (_, m) => plainMath(m))
      .replace(/\$\$([\s\S]*?)\$\$/g, (_, m) => plainMath(m));
  }

  function patch() {
    // searchtools.js declares `const Search` at the top level: a global binding,
    // but not a property of window.
    const S = typeof Search === "undefined" ? undefined : Search; // eslint-disable-line no-undef
    if (!S || S.courseStripsTeX || typeof S.htmlToText !== "function") return;
    const original = S.htmlToText.bind(S);
    S.htmlToText = (html, anchor) => stripTeX(original(html, anchor));
    S.courseStripsTeX = true;
  }

  window.courseStripTeX = stripTeX; // for the browser test
  patch();
  document.addEventListener("DOMContentLoaded", patch);
})();

// Printing (and scripts/pdf.py): every dropdown and hidden cell prints open.
window.addEventListener("beforeprint", () => {
  document.querySelectorAll("details").forEach((d) => d.setAttribute("open", ""));
});

// Inline code in a table cell (`hessian_jacrev_chunk16`, `retain_graph=True`) may
// break only after an underscore, "=", "." or "/" on a narrow screen, not in the
// middle of a word ("retain_graph=T" / "rue").
(function () {
  "use strict";
  const BREAK_AFTER = /([_=./])/;
  function run() {
    document.querySelectorAll("article table code").forEach((code) => {
      for (const span of Array.from(code.querySelectorAll("span.pre")).concat(
          code.querySelector("span.pre") ? [] : [code])) {
        const text = span.textContent;
        if (!BREAK_AFTER.test(text) || span.querySelector("wbr")) continue;
        span.textContent = "";
        const parts = text.split(BREAK_AFTER); // ["retain", "_", "graph", "=", "True"]
        parts.forEach((part, i) => {
          if (!part) return;
          span.append(part);
          if (i % 2 === 1 && parts[i - 1] && parts[i + 1]) {
            span.append(document.createElement("wbr"));
          }
        });
      }
      code.classList.add("course-breaks-at-underscores");
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", run);
  } else {
    run();
  }
})();

// A table wider than the column scrolls inside its box (course.css); on a phone its
// right-hand columns are simply cut at the screen's edge. Like a wide equation, it
// gets a one-line hint under it. Re-checked on resize.
(function () {
  "use strict";
  const BOXES = "article .pst-scrollable-table-container";

  function mark() {
    document.querySelectorAll(BOXES).forEach((box) => {
      const wide = box.scrollWidth > box.clientWidth + 1;
      box.classList.toggle("course-scrolls-x", wide);
      const next = box.nextElementSibling;
      const hinted = next && next.classList.contains("course-scroll-hint");
      if (wide && !hinted) {
        const hint = document.createElement("span");
        hint.className = "course-scroll-hint";
        hint.textContent = "wide table: scroll sideways ⇢";
        box.after(hint);
      } else if (!wide && hinted) {
        next.remove();
      }
    });
  }

  let pending = 0;
  function run() {
    mark();
    window.addEventListener("resize", () => {
      clearTimeout(pending);
      pending = setTimeout(mark, 150);
    });
    window.addEventListener("load", mark);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", run);
  } else {
    run();
  }
})();
