"""Remove every HTML-parsing sink (innerHTML and the like) from the vendored front-end code.

Run by ``scripts/vendor-frontend.sh`` on the freshly copied files; rerunnable on the committed
folder (a replacement already made is left as it is). The platform never passes text from an
input file to these libraries as markup, and after this step it could not if it tried:

- Photo Sphere Viewer's captions, custom buttons, loader text, notifications, overlays, panels
  and tooltips, and the markers plugin's ``html`` markers, show their strings as text nodes;
- its icons (SVG strings of the library itself) go through the XML parser and must be one
  ``<svg>`` element, else they are shown as text;
- the loader's circle and arc are built with ``createElementNS``;
- MapLibre's ``Popup.setHTML`` shows its string as text (``setText``).

Usage: ``python3 scripts/harden_vendor.py <vendor folder>``. Exits 1 naming the file and the
expected code when a library update moved it, or when any sink is left.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

#: Defined once at the top of Photo Sphere Viewer's core module.
SVG_HELPER = """// camcensus (scripts/harden_vendor.py): strings become text nodes or parsed SVG, never markup.
function camcensusSvg(markup) {
  const doc = new DOMParser().parseFromString(String(markup ?? ""), "image/svg+xml");
  const root = doc.documentElement;
  if (root.localName !== "svg" || doc.getElementsByTagName("parsererror").length) {
    return document.createTextNode(String(markup ?? ""));
  }
  for (const el of [root, ...root.querySelectorAll("*")]) {
    if (el.localName === "script" || el.localName === "foreignObject") el.remove();
    for (const a of [...el.attributes]) if (/^on/i.test(a.name)) el.removeAttribute(a.name);
  }
  return document.importNode(root, true);
}
"""

_LOADER_OLD = """    this.canvas.innerHTML = `
            <circle cx="${halfSize}" cy="${halfSize}" r="${halfSize}" fill="${this.color}"/>
            <path d="" fill="none" stroke="${this.textColor}" stroke-width="${this.thickness}" stroke-linecap="round"/>
        `;"""
_LOADER_NEW = """    const svgNs = "http://www.w3.org/2000/svg";
    const circle = document.createElementNS(svgNs, "circle");
    for (const [k, v] of [["cx", halfSize], ["cy", halfSize], ["r", halfSize], ["fill", this.color]]) circle.setAttribute(k, String(v));
    const arc = document.createElementNS(svgNs, "path");
    for (const [k, v] of [["d", ""], ["fill", "none"], ["stroke", this.textColor], ["stroke-width", this.thickness], ["stroke-linecap", "round"]]) arc.setAttribute(k, String(v));
    this.canvas.replaceChildren(circle, arc);"""

#: (file, old, new): each ``old`` must occur exactly once (or ``new`` already be there).
REPLACEMENTS: tuple[tuple[str, str, str], ...] = (
    ("photo-sphere-viewer-core/index.module.js",
     "    return this.container.innerHTML;\n", "    return this.container.textContent;\n"),
    ("photo-sphere-viewer-core/index.module.js",
     "    this.container.innerHTML = icon;\n",
     "    this.container.replaceChildren(camcensusSvg(icon));\n"),
    ("photo-sphere-viewer-core/index.module.js",
     "        this.container.innerHTML = config.content;\n",
     "        this.container.textContent = config.content;\n"),
    ("photo-sphere-viewer-core/index.module.js",
     '    this.contentElt.innerHTML = html ?? "";\n    if (this.contentElt.innerHTML) {\n',
     '    this.contentElt.textContent = html ?? "";\n    if (this.contentElt.textContent) {\n'),
    ("photo-sphere-viewer-core/index.module.js", _LOADER_OLD, _LOADER_NEW),
    ("photo-sphere-viewer-core/index.module.js",
     "      inner.innerHTML = this.viewer.config.loadingTxt",
     "      inner.textContent = this.viewer.config.loadingTxt"),
    ("photo-sphere-viewer-core/index.module.js",
     "    this.content.innerHTML = config.content;\n    this.container.classList.add(\"psv-notification",
     "    this.content.textContent = config.content;\n    this.container.classList.add(\"psv-notification"),
    ("photo-sphere-viewer-core/index.module.js",
     '    this.image.innerHTML = config.image || "";\n'
     '    this.title.innerHTML = config.title || "";\n'
     '    this.text.innerHTML = config.text || "";\n',
     '    this.image.replaceChildren(camcensusSvg(config.image || ""));\n'
     '    this.title.textContent = config.title || "";\n'
     '    this.text.textContent = config.text || "";\n'),
    ("photo-sphere-viewer-core/index.module.js",
     "    closeBtn.innerHTML = ICONS.close;\n",
     "    closeBtn.replaceChildren(camcensusSvg(ICONS.close));\n"),
    ("photo-sphere-viewer-core/index.module.js",
     "    this.content.innerHTML = config.content;\n    this.content.scrollTop = 0;\n",
     "    this.content.textContent = config.content;\n    this.content.scrollTop = 0;\n"),
    ("photo-sphere-viewer-core/index.module.js",
     "      this.content.innerHTML = null;\n", "      this.content.replaceChildren();\n"),
    ("photo-sphere-viewer-core/index.module.js",
     "    this.content.innerHTML = content;\n", "    this.content.textContent = content;\n"),
    ("photo-sphere-viewer-markers-plugin/index.module.js",
     "        element.innerHTML = this.config.html;\n",
     "        element.textContent = this.config.html;\n"),
    ("maplibre-gl/maplibre-gl.mjs",
     "setHTML(e){let t=document.createDocumentFragment(),n=document.createElement(`body`),r;"
     "for(n.innerHTML=e;r=n.firstChild,r;)t.appendChild(r);return this.setDOMContent(t)}",
     "setHTML(e){return this.setText(e)}"),
)  # fmt: skip

#: What must not be left anywhere in the vendored code.
SINKS = re.compile(
    r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|createContextualFragment"
)


def harden(vendor: Path) -> list[str]:
    """Apply :data:`REPLACEMENTS` under ``vendor``; return the problems (empty when done)."""
    problems: list[str] = []
    texts: dict[Path, str] = {}
    for name, old, new in REPLACEMENTS:
        path = vendor / name
        text = texts.setdefault(path, path.read_text(encoding="utf-8"))
        found = text.count(old)
        if found == 1:
            texts[path] = text.replace(old, new)
        elif not (found == 0 and new in text):
            problems.append(f"{path}: expected this code once, found it {found} times:\n{old}")
    core = vendor / "photo-sphere-viewer-core/index.module.js"
    if core in texts and "function camcensusSvg(" not in texts[core]:
        texts[core] = SVG_HELPER + texts[core]
    for path, text in texts.items():
        path.write_text(text, encoding="utf-8")
    for path in sorted(vendor.rglob("*")):
        if path.suffix in (".js", ".mjs") and SINKS.search(path.read_text(encoding="utf-8")):
            problems.append(f"{path}: an HTML-parsing sink is left ({SINKS.pattern})")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    problems = harden(Path(argv[1]))
    for p in problems:
        print(f"harden_vendor.py: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
