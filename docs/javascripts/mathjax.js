// MathJax 3 for the whole site: the Markdown pages' formulas (pymdownx.arithmatex wraps them
// in .arithmatex) and the tutorials' ($...$ and $$...$$ in the notebooks' Markdown cells,
// .jp-RenderedMarkdown, left as written by nbconvert). Everything else is skipped, so a "$" in
// ordinary text stays a "$".
//
// MathJax inherits "ignore" from parent to child and re-tests it at every element that has a
// class: with ".+" an element with any class is ignored unless it is one of the processed
// classes, while the class-less <p>, <li> and <td> of a notebook cell inherit "process" from
// their cell.
window.MathJax = {
  tex: {
    inlineMath: [["$", "$"], ["\\(", "\\)"]],
    displayMath: [["$$", "$$"], ["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".+",
    processHtmlClass: "arithmatex|jp-RenderedMarkdown",
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
