"""One profile's page: its four situations, the photos and concepts that matter, and why.

Built from an `ltr.explain.Explanation` (the numbers `ltr explain --out` writes) and the scores of
the split's users (for the distributions). Every number is shown with `ltr.feedback.numbers` and
carries its full value and its place in the JSON as ``data-*`` attributes, so tests (and anyone)
can check the page against the JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ltr.explain import Explanation
from ltr.feedback import numbers as fmt
from ltr.feedback.html import esc, facts, page
from ltr.feedback.provenance import Provenance
from ltr.situations import DESCRIPTIONS, SITUATIONS

#: Photos in the cross-situation view.
ACROSS = 8
HIST_BINS = 24

PROFILE_STYLE = """
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(15.5rem,1fr));gap:.8rem}
.card{border:1px solid var(--line);border-radius:.5rem;padding:.7rem .8rem .5rem}
.card h3{margin:0 0 .2rem;font-size:1rem}
.big{font-size:1.7rem;font-weight:650;margin:.1rem 0;font-variant-numeric:tabular-nums}
.hist{display:block;width:100%;height:auto;margin-top:.3rem}
.axis{display:flex;justify-content:space-between;margin:0}
.bars{list-style:none;margin:.4rem 0 1rem;padding:0}
.bar-head,.bar-row{display:grid;grid-template-columns:minmax(11rem,1.2fr) 1fr 1fr;gap:.3rem 1rem;
align-items:center;padding:.35rem 0;border-bottom:1px solid var(--line)}
.bars.concept .bar-head,.bars.concept .bar-row{grid-template-columns:minmax(10rem,1fr) .8fr 1fr 1fr}
.bar-head{font-size:.82rem;color:var(--muted);font-weight:600;border-bottom-width:2px}
.bar-label{min-width:0;overflow-wrap:anywhere}
.what{display:block;font-size:.85rem;color:var(--muted)}
.cell{display:grid;grid-template-columns:minmax(3rem,1fr) 6.6rem;gap:.5rem;align-items:center}
.track{position:relative;height:1rem;
background:linear-gradient(var(--muted),var(--muted)) 50% 0/1px 100% no-repeat}
.bar{position:absolute;top:.1rem;bottom:.1rem;border:1px solid}
.bar.help{left:50%;background:var(--help-bg);border-color:var(--help)}
.bar.hurt{right:50%;border-color:var(--hurt);
background:repeating-linear-gradient(135deg,var(--hurt-bg) 0 3px,#fff 3px 5px)}
.bar.rate{background:#dfe3e8;border-color:#6f7b88}
.bar.rate.pos{left:50%}
.bar.rate.neg{right:50%}
.val{font-size:.88rem;font-variant-numeric:tabular-nums;white-space:nowrap}
.disagree{font-weight:600}
table.across th[scope=row]{min-width:10rem;overflow-wrap:anywhere;font-weight:normal}
table.across td{text-align:center;font-variant-numeric:tabular-nums}
table.across th.sit{text-align:center}
table.across td.mixed{min-width:8rem;text-align:left}
table.across td.mixed .tag{white-space:normal;margin-bottom:.15rem}
table.across td.help{background:var(--help-bg)}
table.across td.hurt{background:repeating-linear-gradient(135deg,var(--hurt-bg) 0 4px,#fff 4px 7px)}
table.across .pp{font-size:.8rem}
@media (max-width:600px){
 .bar-head{display:none}
 .cards{grid-template-columns:1fr 1fr;gap:.5rem}
 .card{padding:.5rem .5rem .3rem}
 .card h3{font-size:.88rem}
 .big{font-size:1.3rem}
 .card p{font-size:.85rem}
 .bar-row{grid-template-columns:1fr 1fr;gap:.2rem .8rem}
 .bar-label{grid-column:1/-1}
 .axis{font-size:.72rem}
 .bars.concept .bar-row{grid-template-columns:1fr 1fr 1fr;gap:.2rem .6rem}
 .cell{grid-template-columns:1fr;gap:.1rem}
 .cell::before{content:attr(data-label);font-size:.72rem;color:var(--muted)}
 .val{font-size:.82rem}
 table.across,table.across tbody{display:block}
 table.across thead{display:none}
 table.across tr{display:grid;grid-template-columns:repeat(4,1fr);
  border-bottom:2px solid var(--line)}
 table.across th[scope=row]{grid-column:1/-1;border:0}
 table.across td{padding:.25rem .15rem}
 table.across td::before{content:attr(data-situation);display:block;font-size:.75rem;
  font-weight:600;color:var(--ink)}
 table.across td.mixed{grid-column:1/-1;text-align:left}
 table.across td.mixed::before{content:none}
}
"""


def _title(situation: str) -> str:
    text = DESCRIPTIONS[situation]
    return f"{text[0].upper()}{text[1:]} ({situation})"


def _num(text: str, value: float, **attrs: str) -> str:
    """A shown number with its full value and its place in the JSON as attributes."""
    extra = "".join(f' data-{k.replace("_", "-")}="{esc(v)}"' for k, v in attrs.items())
    return f'<span class="n"{extra} data-value="{fmt.exact(value)}">{esc(text)}</span>'


def _effect_class(value: float, decimals: int = fmt.SCORE_DECIMALS) -> str:
    """help, hurt or none: the sign of `value` as shown with `decimals` decimals."""
    return {1: "help", -1: "hurt", 0: "none"}[fmt.sign(value, decimals)]


@dataclass(frozen=True)
class Population:
    """The split's scores as pages draw them: per situation the range and a histogram, computed
    once for all the pages of a split."""

    n_users: int
    low: dict[str, float]
    high: dict[str, float]
    counts: dict[str, list[int]]

    @classmethod
    def of(cls, scores: pd.DataFrame) -> Population:
        low, high, counts = {}, {}, {}
        for s in SITUATIONS:
            values = scores[s].to_numpy(dtype=float)
            lo, hi = float(values.min()), float(values.max())
            if hi <= lo:
                lo, hi = lo - 0.5, hi + 0.5
            low[s], high[s] = float(values.min()), float(values.max())
            counts[s] = np.histogram(values, bins=HIST_BINS, range=(lo, hi))[0].tolist()
        return cls(len(scores), low, high, counts)


def histogram_svg(population: Population, situation: str, mine: float, label: str) -> str:
    """The split's scores as a small histogram, with this profile marked (line, triangle, text)."""
    counts = population.counts[situation]
    lo, hi = population.low[situation], population.high[situation]
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    width, base, top = 240.0, 52.0, 16.0
    step = width / HIST_BINS
    where = min(max((mine - lo) / (hi - lo), 0.0), 1.0)
    mine_bin = min(int(where * HIST_BINS), HIST_BINS - 1)
    tallest = max(counts) or 1
    rects = []
    for i, count in enumerate(counts):
        if not count:
            continue
        height = max(count / tallest * (base - top), 1.0)
        fill = "#6f7b88" if i == mine_bin else "#c5cdd6"
        rects.append(
            f'<rect x="{i * step + 0.5:.1f}" y="{base - height:.1f}" width="{step - 1:.1f}" '
            f'height="{height:.1f}" fill="{fill}"/>'
        )
    x = min(max(where * width, 1.0), width - 1.0)
    anchor, dx = ("start", 4) if x < width * 0.62 else ("end", -4)
    ident = f"hist-{situation}"
    return (
        f'<svg class="hist" viewBox="0 0 {width:.0f} 64" role="img" aria-labelledby="{ident}">'
        f'<title id="{ident}">{esc(label)}</title>'
        f'<line x1="0" y1="{base}" x2="{width:.0f}" y2="{base}" stroke="#8a949e" stroke-width="1"/>'
        + "".join(rects)
        + f'<line x1="{x:.1f}" y1="13" x2="{x:.1f}" y2="{base + 2}" stroke="#111" '
        'stroke-width="2"/>'
        f'<polygon points="{x - 5:.1f},63 {x + 5:.1f},63 {x:.1f},{base + 3}" fill="#111"/>'
        f'<text x="{x + dx:.1f}" y="10" font-size="10" text-anchor="{anchor}" fill="#111" '
        'font-family="system-ui,sans-serif">this profile</text></svg>'
    )


def _glance(explanation: Explanation, population: Population) -> str:
    cards = []
    n_users = population.n_users
    for s in SITUATIONS:
        score, pct = float(explanation.scores[s]), float(explanation.percentiles[s])
        low, high = fmt.score(population.low[s]), fmt.score(population.high[s])
        label = (
            f"Scores of the {n_users:,} users of split {explanation.split} for "
            f"{DESCRIPTIONS[s]}, from {low} to {high}; this profile at {fmt.score(score)}, "
            f"higher than {fmt.percent(pct)} of the others."
        )
        shown_score = _num(fmt.score(score), score, kind="profile", field="score", situation=s)
        shown_pct = _num(fmt.percent(pct), pct, kind="profile", field="percentile", situation=s)
        cards.append(
            f'<article class="card" data-situation="{s}"><h3>{esc(_title(s))}</h3>'
            f'<p class="big">{shown_score}<span class="small muted"> score</span></p>'
            f"<p>Higher than <strong>{shown_pct}</strong> of the other {n_users - 1:,} users.</p>"
            + histogram_svg(population, s, score, label)
            + f'<p class="axis small muted"><span>lowest {esc(low)}</span>'
            f"<span>highest {esc(high)}</span></p></article>"
        )
    return '<div class="cards">' + "".join(cards) + "</div>"


@dataclass(frozen=True)
class _Row:
    name: str
    label_html: str
    effect: float
    effect_pct: float
    rating: float | None = None


def _track(cls: str, width: float) -> str:
    bar = f'<span class="bar {cls}" style="width:{width:.1f}%"></span>' if width > 0 else ""
    return f'<div class="track" aria-hidden="true">{bar}</div>'


def _bars(kind: str, situation: str, rows: Sequence[_Row], empty: str) -> str:
    """Diverging bars (score and percentile effects; for concepts also the crowd rating) for
    `rows`, biggest help first. Each bar's sign and word say what its colour says."""
    if not rows:
        return f'<p class="muted">{esc(empty)}</p>'
    scale = max(abs(r.effect) for r in rows) or 1.0
    scale_pct = max(abs(r.effect_pct) for r in rows) or 1.0
    ratings = [abs(r.rating) for r in rows if r.rating is not None]
    scale_rating = max(ratings, default=0.0) or 1.0
    labels = ["effect on the score", "effect on the percentile"]
    if ratings:
        labels.insert(0, "crowd rating")
    head = (
        '<li class="bar-head" aria-hidden="true"><span>'
        + ("photo and what it shows" if kind == "photo" else "concept")
        + "</span>"
        + "".join(f"<span>{label}</span>" for label in labels)
        + "</li>"
    )
    items = [head]
    for r in rows:
        cls = _effect_class(r.effect)
        attrs = {"kind": kind, "name": r.name, "situation": situation}
        cells = []
        if r.rating is not None:
            rsign = fmt.sign(r.rating, fmt.RATING_DECIMALS)
            word = {1: "positive", -1: "negative", 0: "neutral"}[rsign]
            width = min(abs(r.rating) / scale_rating * 50.0, 50.0) if rsign else 0.0
            shown = _num(fmt.rating(r.rating), r.rating, field="rating", **attrs)
            cells.append(
                '<div class="cell" data-label="crowd">'
                + _track(f"rate {'pos' if rsign > 0 else 'neg'}", width)
                + f'<span class="val">{shown} {word}</span></div>'
            )
        for field, value, text, full, label, own in (
            ("effect", r.effect, fmt.score(r.effect), scale, "score", cls),
            # a percentile effect is coloured by its own sign: a score effect too small to
            # move the rank shows a neutral 0.0 pp, not a helping or hurting one
            ("effect_pct", r.effect_pct, fmt.points(r.effect_pct), scale_pct, "percentile",
             _effect_class(r.effect_pct, fmt.PERCENT_DECIMALS)),
        ):  # fmt: skip
            width = min(abs(value) / full * 50.0, 50.0) if own != "none" else 0.0
            word = f" {esc(fmt.effect_word(r.effect))}" if field == "effect" else ""
            cells.append(
                f'<div class="cell" data-label="{label}">{_track(own, width)}'
                f'<span class="val {own}">{_num(text, value, field=field, **attrs)}{word}</span>'
                "</div>"
            )
        items.append(
            f'<li class="bar-row" data-kind="{kind}" data-name="{esc(r.name)}" '
            f'data-situation="{situation}" data-effect="{cls}">'
            f'<div class="bar-label">{r.label_html}</div>' + "".join(cells) + "</li>"
        )
    return f'<ul class="bars {kind}">{"".join(items)}</ul>'


@dataclass(frozen=True)
class _Items:
    """An explanation's photos or concepts as plain lists: a page sorts and formats a few dozen
    items eight times, where pandas' per-call overhead would cost more than the scoring."""

    names: list[str]
    effect: dict[str, list[float]]
    pct: dict[str, list[float]]
    concepts: list[str] | None = None
    photos: list[int] | None = None
    rating: dict[str, list[float]] | None = None

    @classmethod
    def of(cls, frame: pd.DataFrame) -> _Items:
        columns = {c: frame[c].tolist() for c in frame.columns}
        return cls(
            names=[str(n) for n in frame.index],
            effect={s: [float(v) for v in columns[s]] for s in SITUATIONS},
            pct={s: [float(v) for v in columns[f"{s}_pct"]] for s in SITUATIONS},
            concepts=[str(c) for c in columns["concepts"]] if "concepts" in columns else None,
            photos=[int(n) for n in columns["photos"]] if "photos" in columns else None,
            rating={s: [float(v) for v in columns[f"rating_{s}"]] for s in SITUATIONS}
            if "photos" in columns
            else None,
        )

    def top(self, situation: str, top: int) -> list[int]:
        """The `top` items that help most, then the `top` that hurt most, biggest help first
        (ties by name, so the page is the same on every run)."""
        effect = self.effect[situation]
        order = sorted(range(len(self.names)), key=lambda i: (-effect[i], self.names[i]))
        signs = [fmt.sign(effect[i], fmt.SCORE_DECIMALS) for i in order]
        helping = [i for i, sign in zip(order, signs, strict=True) if sign > 0][:top]
        hurting = [i for i, sign in zip(order, signs, strict=True) if sign < 0]
        return helping + hurting[max(len(hurting) - top, 0) :]

    def signs(self, i: int) -> tuple[list[str], list[str]]:
        """The situations item `i` helps in and those it hurts in (as shown)."""
        shown = {s: fmt.sign(self.effect[s][i], fmt.SCORE_DECIMALS) for s in SITUATIONS}
        return [s for s in SITUATIONS if shown[s] > 0], [s for s in SITUATIONS if shown[s] < 0]


def _photo_label(name: str, concepts: str) -> str:
    shown = concepts if concepts else "no detected concept"
    return f'<code>{esc(name)}</code><span class="what">{esc(shown)}</span>'


def _photo_sections(photos: _Items, top: int) -> str:
    assert photos.concepts is not None
    parts = []
    for s in SITUATIONS:
        rows = [
            _Row(
                photos.names[i],
                _photo_label(photos.names[i], photos.concepts[i]),
                photos.effect[s][i],
                photos.pct[s][i],
            )
            for i in photos.top(s, top)
        ]
        parts.append(
            f'<section class="situation" data-situation="{s}"><h3>{esc(_title(s))}</h3>'
            + _bars("photo", s, rows, "No photo changes this score (at the shown precision).")
            + "</section>"
        )
    return "".join(parts)


def _reading(rating: float, effect: float) -> str:
    r, e = fmt.sign(rating, fmt.RATING_DECIMALS), fmt.sign(effect, fmt.SCORE_DECIMALS)
    if r and e and r != e:
        crowd = "positive" if r > 0 else "negative"
        model = "hurts" if e < 0 else "helps"
        return (
            f'<span class="tag disagree">model disagrees</span> rated {crowd} by the crowd, '
            f"yet it {model} this profile"
        )
    if r == 0:
        return "the crowd rates it neutral"
    return "the model agrees with the crowd"


def _concept_sections(concepts: _Items, top: int) -> str:
    assert concepts.photos is not None and concepts.rating is not None
    parts = []
    for s in SITUATIONS:
        rows = []
        for i in concepts.top(s, top):
            name, count, rating = concepts.names[i], concepts.photos[i], concepts.rating[s][i]
            effect = concepts.effect[s][i]
            label = (
                f"<code>{esc(name)}</code>"
                f'<span class="what">in {count} photo{"s" if count != 1 else ""}; '
                f"{_reading(rating, effect)}</span>"
            )
            rows.append(_Row(name, label, effect, concepts.pct[s][i], rating))
        parts.append(
            f'<section class="situation" data-situation="{s}"><h3>{esc(_title(s))}</h3>'
            + _bars("concept", s, rows, "No concept changes this score (at the shown precision).")
            + "</section>"
        )
    return "".join(parts)


def _across(photos: _Items, count: int) -> str:
    assert photos.concepts is not None
    n = len(photos.names)
    if not n:
        return '<p class="muted">This profile has no photo.</p>'
    size = [
        (
            max(abs(photos.pct[s][i]) for s in SITUATIONS),
            max(abs(photos.effect[s][i]) for s in SITUATIONS),
        )
        for i in range(n)
    ]
    ranked = sorted(range(n), key=lambda i: (-size[i][0], -size[i][1], photos.names[i]))[:count]
    n_mixed = sum(1 for i in range(n) if all(photos.signs(i)))
    intro = (
        f"<p>Of this profile's {n} photos, <strong>{n_mixed}</strong> help in at least "
        "one situation and hurt in another. The table shows the "
        f"{len(ranked)} photos with the largest effects (in percentile points, in any "
        "situation): each cell is the effect on that situation's score and percentile.</p>"
    )
    head = "".join(f'<th scope="col" class="sit">{esc(_title(s))}</th>' for s in SITUATIONS)
    body = []
    for i in ranked:
        name = photos.names[i]
        cells = []
        for s in SITUATIONS:
            effect, pct = photos.effect[s][i], photos.pct[s][i]
            attrs = {"kind": "photo", "name": name, "situation": s}
            cells.append(
                f'<td class="{_effect_class(effect)}" data-situation="{s}">'
                f"{_num(fmt.score(effect), effect, field='effect', **attrs)}"
                f'<br><span class="pp">{_num(fmt.points(pct), pct, field="effect_pct", **attrs)}'
                f'</span><br><span class="tag">{esc(fmt.effect_word(effect))}</span></td>'
            )
        helps, hurts = photos.signs(i)
        pairs = (("helps", helps), ("hurts", hurts))
        said = [f"{word}: {', '.join(where)}" for word, where in pairs if where]
        mixed = esc("; ".join(said)) or "no effect"
        if helps and hurts:
            mixed = f'<span class="tag">reads differently</span> {mixed}'
        body.append(
            f'<tr data-name="{esc(name)}"><th scope="row">'
            f"{_photo_label(name, photos.concepts[i])}</th>{''.join(cells)}"
            f'<td class="mixed small">{mixed}</td></tr>'
        )
    return (
        intro + '<div class="scroll"><table class="across" aria-labelledby="across-title">'
        '<thead><tr><th scope="col">Photo</th>'
        + head
        + '<th scope="col">In short</th></tr></thead><tbody>'
        + "".join(body)
        + "</tbody></table></div>"
    )


def _about(explanation: Explanation, prov: Provenance) -> str:
    split = esc(prov.split)
    return (
        '<div class="note"><p><strong>What an effect is.</strong> Each effect answers one '
        "question: <em>what if this photo (or every detection of this concept) were not in the "
        "profile, everything else unchanged?</em> It is the score with it minus the score "
        "without it: <strong>+ helps</strong> (the score would drop without it), "
        "<strong>&minus; hurts</strong> (the score would rise). The effect on the percentile is "
        f"the same in percentile points (pp) among the other users of split {split}.</p>"
        "<p><strong>Limits.</strong> Effects are this model's reading, learned from crowd "
        "judgements of other profiles, not a verdict on a person. They are measured one photo "
        "or concept at a time and do not add up: removing two photos can change a score by more "
        "or less than their two effects. The concepts come from an object detector and can be "
        "wrong or missing. A crowd rating judges a concept on its own; the learned effect is what "
        "the model makes of it in this profile, so the two can disagree. Scores and percentiles "
        f"compare this profile with split {split} only.</p></div>"
        + facts(
            [
                ("Model", f"<code>{esc(prov.model)}</code>: {esc(prov.spec)}"),
                ("Trained on", esc(prov.trained_on)),
                ("Cross-validation", esc(prov.cv)),
                ("Scored data", esc(prov.data)),
                ("Profile", f"<code>{esc(explanation.user)}</code> in split {split}"),
                (prov.date_label, esc(prov.date)),
                ("Made by", f"ltr {esc(prov.ltr_version)} (<code>ltr explain --html</code>)"),
            ]
        )
    )


def render_profile(
    explanation: Explanation,
    population: pd.DataFrame | Population,
    prov: Provenance,
    *,
    top: int = 3,
    across: int = ACROSS,
    index_href: str | None = None,
) -> str:
    """The whole page of one profile, as a string; `population` holds the split's scores."""
    user = esc(explanation.user)
    if not isinstance(population, Population):
        population = Population.of(population)
    photos = _Items.of(explanation.photos)
    n_photos, n_concepts = len(explanation.photos), len(explanation.concepts)
    back = (
        f'<p class="noprint small"><a href="{esc(index_href)}">&larr; all profiles</a></p>'
        if index_href
        else ""
    )
    body = (
        back + '<p class="eyebrow">ltr &middot; photo profile feedback</p>'
        f"<h1>Profile <code>{user}</code>: what four situations read in these photos</h1>"
        f'<p class="lede">{n_photos} photo{"s" if n_photos != 1 else ""} with '
        f"{n_concepts} detected concept{'s' if n_concepts != 1 else ''}, scored by the model "
        f"<code>{esc(prov.model)}</code> among the {prov.n_users:,} users of split "
        f"{esc(prov.split)}. The same photo can read differently for a bank, a landlord, a "
        "restaurant and an IT employer.</p>"
        '<nav class="toc noprint" aria-label="Sections"><a href="#glance">At a glance</a>'
        '<a href="#across">Photos across situations</a><a href="#photos">Photos per situation'
        '</a><a href="#concepts">Concepts</a><a href="#about">About these numbers</a></nav>'
        '<section id="glance"><h2>The four situations at a glance</h2>'
        + _glance(explanation, population)
        + '</section><section id="across">'
        '<h2 id="across-title">The same photo, four situations</h2>'
        + _across(photos, across)
        + '</section><section id="photos"><h2>The photos that matter most</h2>'
        f"<p>Per situation, the {top} photos that help most and the {top} that hurt most.</p>"
        + _photo_sections(photos, top)
        + '</section><section id="concepts"><h2>The concepts that matter most</h2>'
        "<p>Removing a concept removes every detection of it. Next to each learned effect, the "
        "concept's crowd rating for the situation: where they differ in sign, the model "
        "disagrees with the naive reading.</p>"
        + _concept_sections(_Items.of(explanation.concepts), top)
        + '</section><section id="about"><h2>About these numbers</h2>'
        + _about(explanation, prov)
        + "</section>"
    )
    return page(f"ltr feedback: profile {explanation.user}", body, extra_style=PROFILE_STYLE)
