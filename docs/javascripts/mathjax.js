// MathJax 3 for the whole site: the Markdown pages' formulas (pymdownx.arithmatex wraps them
// in .arithmatex) and the tutorials' ($...$ and $$...$$ inside .jupyter-wrapper, left as
// written by nbconvert). Everything else is skipped, so a "$" in ordinary text stays a "$".
window.MathJax = {
  tex: {
    inlineMath: [["$", "$"], ["\\(", "\\)"]],
    displayMath: [["$$", "$$"], ["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex|jupyter-wrapper",
  },
};

// Material's instant navigation swaps pages without reloading: typeset each new page.
if (typeof document$ !== "undefined") {
  document$.subscribe(() => {
    if (window.MathJax && MathJax.startup && MathJax.typesetPromise) {
      MathJax.startup.output.clearCache();
      MathJax.typesetClear();
      MathJax.texReset();
      MathJax.typesetPromise();
    }
  });
}
