"""The index page of a split's profile pages: every user's four scores, sortable, linked.

Sorting is a few lines of inline JS on the numbers the page already holds; without JS the
table stays in the split's file order and every link works.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ltr.feedback import numbers as fmt
from ltr.feedback.html import esc, facts, page
from ltr.feedback.provenance import Provenance
from ltr.situations import DESCRIPTIONS, SITUATIONS


@dataclass(frozen=True)
class IndexRow:
    """One user's line: where its page is and its scores and percentiles per situation."""

    user: str
    href: str
    photos: int
    scores: dict[str, float]
    percentiles: dict[str, float]


INDEX_STYLE = """
th button{font:inherit;font-weight:600;background:none;border:1px solid var(--line);
border-radius:.3rem;padding:.1rem .4rem;cursor:pointer;color:var(--ink);white-space:nowrap}
th button::after{content:" \\2195";color:var(--muted)}
th[aria-sort=descending] button::after{content:" \\2193 high first";color:var(--ink)}
th[aria-sort=ascending] button::after{content:" \\2191 low first";color:var(--ink)}
td .pct{display:block;font-size:.8rem;color:var(--muted)}
td.user{overflow-wrap:anywhere;min-width:8rem}
@media (max-width:600px){table#users{font-size:.78rem}th,td{padding:.3rem .2rem}
 th button{padding:0 .15rem}th button::after{content:""}
 th[aria-sort=descending] button::after{content:" \\2193"}
 th[aria-sort=ascending] button::after{content:" \\2191"}
 td.user{min-width:0}td.user code{font-size:.72rem}}
"""

#: Sorts the table by the clicked column's data-v values; first click: highest first.
SORT_SCRIPT = """
(function () {
  var table = document.getElementById("users");
  var body = table.tBodies[0];
  var heads = table.querySelectorAll("th[data-col]");
  heads.forEach(function (th) {
    th.querySelector("button").addEventListener("click", function () {
      var col = Number(th.getAttribute("data-col"));
      var numeric = th.hasAttribute("data-numeric");
      var desc = numeric ? th.getAttribute("aria-sort") !== "descending"
                         : th.getAttribute("aria-sort") === "ascending";
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].getAttribute("data-v"), y = b.cells[col].getAttribute("data-v");
        var c = numeric ? Number(x) - Number(y) : (x < y ? -1 : x > y ? 1 : 0);
        return desc ? -c : c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
      heads.forEach(function (h) { h.setAttribute("aria-sort", "none"); });
      th.setAttribute("aria-sort", desc ? "descending" : "ascending");
    });
  });
})();
"""


def render_index(rows: Sequence[IndexRow], prov: Provenance) -> str:
    """The index page: one row per user, columns sortable by each situation's score."""
    head = (
        '<th scope="col" data-col="0" aria-sort="none"><button type="button">user</button></th>'
        '<th scope="col" class="num" data-col="1" data-numeric aria-sort="none">'
        '<button type="button">photos</button></th>'
        + "".join(
            f'<th scope="col" class="num" data-col="{2 + j}" data-numeric aria-sort="none" '
            f'data-situation="{s}"><button type="button" aria-label="sort by the {esc(s)} score '
            f'({esc(DESCRIPTIONS[s])})">{esc(s)}</button></th>'
            for j, s in enumerate(SITUATIONS)
        )
    )
    body = []
    for row in rows:
        cells = [
            f'<td class="user" data-v="{esc(row.user)}"><a href="{esc(row.href)}">'
            f"<code>{esc(row.user)}</code></a></td>",
            f'<td class="num" data-v="{row.photos}">{row.photos}</td>',
        ]
        for s in SITUATIONS:
            score, pct = row.scores[s], row.percentiles[s]
            cells.append(
                f'<td class="num" data-situation="{s}" data-v="{fmt.exact(score)}">'
                f"{esc(fmt.score(score))}"
                f'<span class="pct">{esc(fmt.percent(pct))}</span></td>'
            )
        body.append(f'<tr data-user="{esc(row.user)}">{"".join(cells)}</tr>')
    legend = ", ".join(f"{s} = {DESCRIPTIONS[s]}" for s in SITUATIONS)
    text = (
        '<p class="eyebrow">ltr &middot; photo profile feedback</p>'
        f"<h1>{len(rows):,} profiles of split {esc(prov.split)}</h1>"
        '<p class="lede">Each profile has a page: its score and percentile in each situation, '
        "the photos and concepts that help or hurt it, and the same photo read by four "
        "situations. Under each score, the share of the split's other users scored lower.</p>"
        f'<p class="small muted">{esc(legend)}. Sort by a column with its button.</p>'
        f'<div class="scroll"><table id="users"><caption class="small muted">Profiles of split '
        f"{esc(prov.split)} (file order until sorted)</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>"
        "<h2>About these numbers</h2>"
        + facts(
            [
                ("Model", f"<code>{esc(prov.model)}</code>: {esc(prov.spec)}"),
                ("Trained on", esc(prov.trained_on)),
                ("Cross-validation", esc(prov.cv)),
                ("Scored data", esc(prov.data)),
                (prov.date_label, esc(prov.date)),
                ("Made by", f"ltr {esc(prov.ltr_version)} (<code>ltr explain --html-dir</code>)"),
            ]
        )
    )
    return page(
        f"ltr feedback: split {prov.split}", text, extra_style=INDEX_STYLE, script=SORT_SCRIPT
    )
