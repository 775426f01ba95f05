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
