"""The HTML every ltr page shares: escaping, one stylesheet, the page shell.

Pages are single files that open offline from disk: inline CSS (and, where needed, a few lines
of inline JS), the system's own fonts, no external asset of any kind. Every data-derived string
(user ids, photo ids and concept names come from files) goes through `esc`.
"""

from __future__ import annotations

import html
import re

#: Colours (colour-blind-safe blue/orange pair); colour is never the only cue: helps/hurts also
#: carry a sign, a word and a bar direction, and hurting bars are hatched for grey-scale print.
STYLE = """
:root{--ink:#1b1f24;--muted:#5a6572;--line:#d5dbe1;--soft:#f4f6f8;--bg:#fff;
--help:#1c5d99;--help-bg:#d6e6f5;--hurt:#a3420c;--hurt-bg:#f7dfcf;--mark:#111}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--ink);line-height:1.45;
font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:74rem;margin:0 auto;padding:1rem 1rem 3rem}
h1{font-size:1.55rem;line-height:1.25;margin:.4rem 0 .6rem}
h2{font-size:1.25rem;margin:2.2rem 0 .6rem;padding-bottom:.2rem;border-bottom:2px solid var(--line)}
h3{font-size:1.05rem;margin:1.4rem 0 .4rem}
p{margin:.4rem 0 .8rem}
a{color:var(--help)}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.88em;
background:var(--soft);padding:.05em .25em;border-radius:3px;overflow-wrap:anywhere}
pre{background:var(--soft);padding:.8rem;overflow-x:auto;font-size:.85rem}
pre code{background:none;padding:0}
.eyebrow{color:var(--muted);font-size:.85rem;margin:0;text-transform:uppercase;letter-spacing:.04em}
.lede{font-size:1.05rem;max-width:48rem}
.muted{color:var(--muted)}
.small{font-size:.85rem}
nav.toc{display:flex;flex-wrap:wrap;gap:.3rem .9rem;font-size:.9rem;margin:.6rem 0 0}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;width:100%;font-size:.92rem}
caption{text-align:left;font-weight:600;padding:.3rem 0}
th,td{padding:.35rem .5rem;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
thead th{border-bottom:2px solid var(--line);font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.help{color:var(--help)}
.hurt{color:var(--hurt)}
.none{color:var(--muted)}
.tag{display:inline-block;font-size:.78rem;font-weight:600;padding:0 .35em;border-radius:.25em;
border:1px solid currentColor;white-space:nowrap}
.note{background:var(--soft);border-left:4px solid var(--line);padding:.6rem .8rem;margin:.8rem 0}
figure{margin:1rem 0}
figcaption{color:var(--muted);font-size:.88rem}
img{max-width:100%;height:auto}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:.4rem 0}
dl.facts dt{font-weight:600}
dl.facts dd{margin:0;overflow-wrap:anywhere}
@media (max-width:600px){
 main{padding:.6rem .7rem 2rem}
 h1{font-size:1.3rem}
 dl.facts{grid-template-columns:1fr}
 dl.facts dd{margin-bottom:.4rem}
}
@media print{
 *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
 body{font-size:11pt}
 main{max-width:none;padding:0}
 nav.toc,.noprint{display:none}
 h2{break-after:avoid}
 section,figure,tr,li,.card{break-inside:avoid}
 a{color:inherit;text-decoration:none}
 .scroll{overflow:visible}
}
"""

_CODE = re.compile(r"`([^`\n]+)`")


def esc(value: object) -> str:
    """`value` as HTML text or a double-quoted attribute value."""
    return html.escape(str(value), quote=True)


def inline_markdown(text: str) -> str:
    """Escape `text` and turn its Markdown code spans (`like this`) into ``<code>``."""
    parts = _CODE.split(text)
    return "".join(
        f"<code>{esc(part)}</code>" if i % 2 else esc(part) for i, part in enumerate(parts)
    )


def page(title: str, body: str, *, extra_style: str = "", script: str = "") -> str:
    """A whole HTML document: `body` is trusted HTML (already escaped by its builder)."""
    js = f"<script>{script}</script>" if script else ""
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light">'
        f"<title>{esc(title)}</title><style>{STYLE}{extra_style}</style></head>"
        f"<body><main>{body}</main>{js}</body></html>\n"
    )


def facts(rows: list[tuple[str, str]]) -> str:
    """A definition list of (label, trusted HTML value) pairs."""
    items = "".join(f"<dt>{esc(label)}</dt><dd>{value}</dd>" for label, value in rows)
    return f'<dl class="facts">{items}</dl>'
