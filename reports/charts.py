"""Pictures for the patient page, drawn server-side as inline SVG (no script, no external file).

Each picture carries a ``<title>`` and a ``<desc>`` (its text alternative, referenced by
``aria-labelledby``), draws with colours that keep at least 3:1 contrast against white for
graphics and 4.5:1 for text (WCAG 2.1 AA), and scales with its container (``viewBox``, no fixed
size).

References
----------
McClelland RL et al. Circulation 2006;113:30-37 (the MESA CAC reference values drawn as a curve).
McClelland RL et al. Am J Cardiol 2009;103:59-63 (arterial age).
Hecht HS et al. J Cardiovasc Comput Tomogr 2018;12:185-191 (CAC-DRS bands: 0, 1-99, 100-299,
>= 300).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from markupsafe import Markup, escape

from interpretation.arterial_age import ArterialAge
from interpretation.cac_drs import A2_MIN_AGATSTON, A3_MIN_AGATSTON, category_for
from interpretation.mesa import MesaCell
from interpretation.summary import format_score

#: Text and axis colour (near black, 16:1 on white).
INK = "#1a1a1a"
#: Grid lines and secondary text (4.5:1 on white).
MUTED = "#595959"
#: The population curve: Okabe-Ito blue (5.0:1 on white), safe for colour-blind readers.
CURVE = "#0072B2"
#: The patient's mark: Okabe-Ito vermillion, outlined in near black so it never relies on colour.
PATIENT = "#D55E00"

#: A white outline drawn under text, so a label stays legible where it crosses the curve.
_HALO = 'stroke="#ffffff" stroke-width="5" stroke-linejoin="round" paint-order="stroke"'

_W, _H = 400, 320
_LEFT, _RIGHT, _TOP, _BOTTOM = 66, 386, 24, 250


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def zero_share_pct(cell: MesaCell) -> int:
    """How many people in 100 of the MESA cell have no calcium (100 - P(CAC > 0))."""
    return round(100 - cell.p_nonzero_pct)


def population_curve(cell: MesaCell) -> list[tuple[int, float]]:
    """``(percentile, Agatston)`` points of the cell's distribution, percentiles 1-99.

    Below the share of people with no calcium the score is 0; from there on, the score at
    percentile n is the smallest score the MESA calculator reports as n (McClelland 2006).
    """
    zero_share = zero_share_pct(cell)
    return [
        (n, 0.0 if n <= zero_share else minimum)
        for n, minimum in enumerate(cell.min_score_by_percentile, start=1)
    ]


def patient_percentile_position(cell: MesaCell, agatston: float, percentile: int | None) -> float:
    """Where the patient's point sits along the percentile axis.

    A score of 0 is shared by everyone in the zero group, so the point sits in its middle; any
    other score sits at its MESA percentile.
    """
    if format_score(agatston) == "0" or percentile is None:
        return zero_share_pct(cell) / 2
    return float(percentile)


def _y_scale(max_score: float) -> tuple[float, list[int]]:
    """The top of the symmetric-log axis and the tick values under it."""
    top = math.log10(1 + max(max_score, 10.0) * 1.15)
    ticks = [t for t in (0, 1, 10, 100, 1000, 10000) if math.log10(1 + t) <= top]
    return top, ticks


def mesa_curve_svg(
    cell: MesaCell,
    agatston: float,
    percentile: int | None,
    *,
    element_id: str = "mesa-chart",
    group_text: str = "people like you",
) -> Markup:
    """The MESA distribution of the patient's cell as a curve, with the patient's point on it.

    Parameters
    ----------
    cell
        The MESA cell (age, sex, race/ethnicity) the percentile was taken from.
    agatston
        The patient's total Agatston score (>= 0).
    percentile
        The patient's MESA percentile (0-99), as :func:`interpretation.mesa.mesa_percentile`
        gave it.
    element_id
        ``id`` of the ``<svg>``; the title and description ids derive from it.
    group_text
        Who the curve describes, in plain words, e.g. ``"men aged 55 who are White"``.

    Returns
    -------
    markupsafe.Markup
        An inline ``<svg role="img">`` whose ``<desc>`` states the same facts as the picture.

    Notes
    -----
    The score axis is logarithmic in (score + 1) so that 0, 10, 100 and 1000 are evenly spaced:
    half of the curve would otherwise sit on the axis line.
    """
    curve = population_curve(cell)
    top, ticks = _y_scale(max(curve[-1][1], agatston))

    def x_of(p: float) -> float:
        return _LEFT + (_RIGHT - _LEFT) * p / 100

    def y_of(score: float) -> float:
        return _BOTTOM - (_BOTTOM - _TOP) * math.log10(1 + score) / top

    zero = zero_share_pct(cell)
    px = patient_percentile_position(cell, agatston, percentile)
    py = y_of(agatston)
    score_text = format_score(agatston)
    if score_text == "0":
        finding = (
            f"About {zero} in 100 of them have a score of 0, like you. "
            "Your point sits in the middle of that group."
        )
    else:
        finding = f"Your score of {score_text} is higher than about {percentile} in 100 of them."
    desc = (
        f"A curve of calcium scores of 100 {group_text} from the MESA study, lined up from the "
        f"lowest score on the left to the highest on the right. About {zero} in 100 have a score "
        f"of 0. Half have a score of {cell.p50:g} or less and 3 in 4 have {cell.p75:g} or less. "
        + finding
    )
    sid = escape(element_id)
    parts = [
        f'<svg id="{sid}" class="chart mesa-chart" viewBox="0 0 {_W} {_H}" role="img" '
        f'aria-labelledby="{sid}-title {sid}-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{sid}-title">Your calcium score compared with {escape(group_text)}</title>',
        f'<desc id="{sid}-desc">{escape(desc)}</desc>',
    ]
    # grid and axes
    for t in ticks:
        y = y_of(t)
        parts.append(
            f'<line x1="{_LEFT}" y1="{_fmt(y)}" x2="{_RIGHT}" y2="{_fmt(y)}" '
            f'stroke="#d0d0d0" stroke-width="1"/>'
            f'<text x="{_LEFT - 8}" y="{_fmt(y + 5)}" text-anchor="end" font-size="15" '
            f'fill="{INK}">{t}</text>'
        )
    for p in (0, 25, 50, 75, 100):
        x = x_of(p)
        parts.append(
            f'<line x1="{_fmt(x)}" y1="{_BOTTOM}" x2="{_fmt(x)}" y2="{_BOTTOM + 6}" '
            f'stroke="{INK}"/>'
            f'<text x="{_fmt(x)}" y="{_BOTTOM + 24}" text-anchor="middle" font-size="15" '
            f'fill="{INK}">{p}</text>'
        )
    parts.append(
        f'<line x1="{_LEFT}" y1="{_BOTTOM}" x2="{_RIGHT}" y2="{_BOTTOM}" stroke="{INK}"/>'
        f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_BOTTOM}" stroke="{INK}"/>'
        f'<text x="{(_LEFT + _RIGHT) / 2}" y="{_H - 14}" text-anchor="middle" font-size="15" '
        f'fill="{INK}">People like you, lowest to highest score</text>'
        f'<text x="18" y="{(_TOP + _BOTTOM) / 2}" text-anchor="middle" font-size="15" '
        f'fill="{INK}" transform="rotate(-90 18 {(_TOP + _BOTTOM) / 2})">Calcium score</text>'
    )
    # the population: filled area under the curve, then the curve itself
    points = [(x_of(0), y_of(0))] + [(x_of(n), y_of(s)) for n, s in curve]
    points.append((x_of(100), y_of(curve[-1][1])))
    path = " ".join(f"{_fmt(x)},{_fmt(y)}" for x, y in points)
    parts.append(
        f'<polygon class="population-area" points="{_fmt(x_of(0))},{_BOTTOM} {path} '
        f'{_fmt(x_of(100))},{_BOTTOM}" fill="#cfe3f3" stroke="none"/>'
        f'<polyline class="population-curve" points="{path}" fill="none" stroke="{CURVE}" '
        f'stroke-width="3" stroke-linejoin="round"/>'
    )
    zero_label = f"{zero} in 100 score 0"
    if score_text != "0" and x_of(zero) - x_of(0) >= 8.0 * len(zero_label) + 12:
        # name the flat start of the curve (the people with no calcium) where the text fits
        parts.append(
            f'<text class="zero-group" x="{_fmt(x_of(0) + 6)}" y="{_BOTTOM - 8}" '
            f'font-size="14" fill="{INK}" {_HALO}>{zero_label}</text>'
        )
    # the patient's point, with guide lines to both axes and a label that stays inside the box
    label_x = px + 0 if px < 70 else px
    anchor = "start" if px < 70 else "end"
    dx = 14 if px < 70 else -14
    label_y = py - 14 if py - 14 > _TOP + 16 else py + 28
    parts.append(
        f'<g class="patient-point" data-percentile="{escape(str(percentile))}" '
        f'data-agatston="{escape(score_text)}">'
        f'<line x1="{_fmt(x_of(px))}" y1="{_fmt(py)}" x2="{_fmt(x_of(px))}" y2="{_BOTTOM}" '
        f'stroke="{PATIENT}" stroke-width="2" stroke-dasharray="5 4"/>'
        f'<line x1="{_LEFT}" y1="{_fmt(py)}" x2="{_fmt(x_of(px))}" y2="{_fmt(py)}" '
        f'stroke="{PATIENT}" stroke-width="2" stroke-dasharray="5 4"/>'
        f'<circle cx="{_fmt(x_of(px))}" cy="{_fmt(py)}" r="9" fill="{PATIENT}" '
        f'stroke="{INK}" stroke-width="2.5"/>'
        f'<text x="{_fmt(x_of(label_x) + dx)}" y="{_fmt(label_y)}" text-anchor="{anchor}" '
        f'font-size="17" font-weight="bold" fill="{INK}" {_HALO}>You: {escape(score_text)}</text>'
        "</g>"
    )
    parts.append("</svg>")
    return Markup("".join(parts))


def arterial_age_svg(
    real_age_years: float | None,
    arterial: ArterialAge,
    *,
    element_id: str = "age-chart",
) -> Markup:
    """Two bars: the patient's age and their arterial ("heart") age, on one 0-100 year scale.

    An arterial age over 84 is drawn to 84 and labelled "over 84"; under 45 is labelled "under
    45" (McClelland, Am J Cardiol 2009: derived in ages 45-84). A real age that is unknown is left
    out. Labels sit above the bars so the picture stays narrow and its text large on a phone.
    """
    rows: list[tuple[str, float, str, str]] = []
    if real_age_years is not None:
        real = math.floor(real_age_years)
        rows.append(("Your age", float(real), f"{real}", "#767676"))
    if arterial.over_84:
        rows.append(("Your heart age", 84.0, "over 84", CURVE))
    elif arterial.years is not None:
        heart = round(arterial.years)
        text = "under 45" if arterial.under_45 else f"about {heart}"
        rows.append(("Your heart age", float(heart), text, CURVE))
    width, row_h = 320, 62
    height = 22 + row_h * len(rows)
    bar_max = 230.0

    def x_of(years: float) -> float:
        return bar_max * min(max(years, 0.0), 100.0) / 100

    desc_parts = [f"{label}: {text}." for label, _, text, _ in rows]
    sid = escape(element_id)
    parts = [
        f'<svg id="{sid}" class="chart age-chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{sid}-title {sid}-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{sid}-title">Your age and your heart age</title>',
        f'<desc id="{sid}-desc">{escape(" ".join(desc_parts))}</desc>',
    ]
    for i, (label, years, text, colour) in enumerate(rows):
        y = i * row_h
        parts.append(
            f'<g class="age-bar" data-label="{escape(label)}">'
            f'<text x="0" y="{y + 17}" font-size="16" fill="{INK}">{escape(label)}</text>'
            f'<rect x="0" y="{y + 24}" width="{_fmt(x_of(years))}" height="26" rx="4" '
            f'fill="{colour}"/>'
            f'<text x="{_fmt(x_of(years) + 6)}" y="{y + 43}" font-size="16" font-weight="bold" '
            f'fill="{INK}">{escape(text)}</text>'
            "</g>"
        )
    axis_y = height - 4
    parts.append(
        f'<line x1="0" y1="{height - 18}" x2="{bar_max}" y2="{height - 18}" stroke="{MUTED}"/>'
        f'<text x="0" y="{axis_y}" font-size="12" fill="{MUTED}">0</text>'
        f'<text x="{bar_max}" y="{axis_y}" font-size="12" fill="{MUTED}" text-anchor="end">'
        "100 years</text></svg>"
    )
    return Markup("".join(parts))


@dataclass(frozen=True, slots=True)
class Band:
    """One CAC-DRS band of the simple scale on the patient page (its words are in the template)."""

    category: int
    range_text: str
    current: bool
    position_pct: float | None
    """Where the patient's score sits inside the band (0-100 %), only for the current band."""


#: The four CAC-DRS bands (Hecht, JCCT 2018): 0, 1-99, 100-299, >= 300 (300 is in the top band).
_BANDS = ((0, "0"), (1, "1 to 99"), (2, "100 to 299"), (3, "300 or more"))


def cac_drs_bands(agatston: float) -> list[Band]:
    """The four CAC-DRS bands with the patient's band marked and their position inside it.

    Inside 1-99 and 100-299 the position is linear; in the open top band it is logarithmic up to
    3000, so a very high score still shows as "far along" without leaving the scale.
    """
    category = category_for(agatston)
    bands = []
    for cat, range_text in _BANDS:
        position: float | None = None
        if cat == category:
            if cat == 0:
                position = 50.0
            elif cat == 1:
                position = 100 * agatston / A2_MIN_AGATSTON
            elif cat == 2:
                position = 100 * (agatston - A2_MIN_AGATSTON) / (A3_MIN_AGATSTON - A2_MIN_AGATSTON)
            else:
                position = 100 * math.log10(agatston / A3_MIN_AGATSTON)
            position = min(max(position, 6.0), 94.0)
        bands.append(Band(cat, range_text, cat == category, position))
    return bands


__all__ = [
    "Band",
    "arterial_age_svg",
    "cac_drs_bands",
    "mesa_curve_svg",
    "patient_percentile_position",
    "population_curve",
    "zero_share_pct",
]
