"""Key images: axial slices with every scored lesion outlined in its artery's colour.

A reviewer checks the automatic artery labels at a glance: each scored lesion is ringed in the
colour of its artery and tagged with the artery and its lesion number (so colour is never the only
cue), excluded candidates are ringed faintly (thin, dashed, grey) with their reason, and a legend
names the colours. The slices are few and chosen so that every scored lesion appears on at least
one; all share one crop around the scored calcium, so the heart stays in the same place from image
to image.

Pictures are PNG, drawn with numpy and Pillow; arrays are ``(z, y, x)``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from reports.errors import InvalidReportInputError
from scoring.parameters import ARTERIES, Artery, ExclusionReason
from scoring.result import Candidate, CandidateSet, ScoreResult
from scoring.volume import CTVolume

RGB = tuple[int, int, int]

#: Artery colours from the Okabe-Ito palette (Okabe M, Ito K. Color Universal Design, 2008),
#: chosen to stay distinct for the common colour-vision deficiencies and against grey CT.
ARTERY_COLOURS: dict[Artery, RGB] = {
    Artery.LM: (204, 121, 167),  # reddish purple
    Artery.LAD: (86, 180, 233),  # sky blue
    Artery.LCX: (0, 158, 115),  # bluish green
    Artery.RCA: (230, 159, 0),  # orange
}
#: Scored lesions without an artery (whole-volume scoring): Okabe-Ito yellow.
UNASSIGNED_COLOUR: RGB = (240, 228, 66)
#: Excluded candidates: faint grey.
EXCLUDED_COLOUR: RGB = (150, 150, 150)

#: Default display window (width, level) in HU: wide enough to tell calcium from contrast-free
#: soft tissue and bone, a common choice for calcium-scoring review.
DEFAULT_WINDOW_HU = (800.0, 200.0)
#: Margin around the scored calcium, and the smallest field of view shown (mm).
CROP_MARGIN_MM = 35.0
MIN_FIELD_MM = 110.0
#: Target width of the image part of a key image (pixels).
TARGET_WIDTH_PX = 560
MAX_SCALE = 6

_HEADER_PX = 30
#: Excluded candidates with this reason are outlined without a text label.
_UNLABELLED_REASON = ExclusionReason.BONE.value
_LEGEND_PX = 40


def hex_colour(rgb: RGB) -> str:
    """``#rrggbb`` of an RGB triple (for HTML and SVG legends)."""
    return "#{:02x}{:02x}{:02x}".format(*rgb)


@dataclass(frozen=True, slots=True)
class KeyImage:
    """One key image.

    Attributes
    ----------
    png
        The PNG file.
    slice_index
        Index of the slice in the volume (``z``).
    position_mm
        (0020,0032) Image Position (Patient) of the slice, ``(x, y, z)``.
    scored_lesion_ids
        Scored lesions outlined on this slice.
    excluded_lesion_ids
        Excluded candidates drawn faintly on this slice.
    crop
        ``(row0, row1, col0, col1)``: the part of the slice shown (end exclusive).
    scale
        How many image pixels one CT pixel spans.
    caption
        One sentence for a text alternative, e.g. "Slice 12: LAD #3, RCA #5; excluded #7 (bone)".
    """

    png: bytes
    slice_index: int
    position_mm: tuple[float, float, float]
    scored_lesion_ids: tuple[int, ...]
    excluded_lesion_ids: tuple[int, ...]
    crop: tuple[int, int, int, int]
    scale: int
    caption: str


@dataclass(frozen=True, slots=True)
class KeyImageSet:
    """The key images of a study and the scored lesions they could not show.

    Attributes
    ----------
    images
        In slice order.
    not_shown_lesion_ids
        Scored lesions on none of the images (only when more than ``max_images`` slices would
        be needed); the report lists them.
    window_hu
        ``(width, level)`` used.
    """

    images: tuple[KeyImage, ...]
    not_shown_lesion_ids: tuple[int, ...]
    window_hu: tuple[float, float]


def _slices_of(candidate: Candidate) -> set[int]:
    return {c.slice_index for c in candidate.components}


def _area_in(candidate: Candidate, z: int) -> float:
    return sum(c.area_mm2 for c in candidate.components if c.slice_index == z)


#: The PNG palette: every grey from 16 to 255 exactly (so windowed HU values and the excluded
#: grey survive unchanged), even greys below 16 (invisible steps), then the outline colours.
_PALETTE_GREYS = list(range(0, 16, 2)) + list(range(16, 256))
_PALETTE = np.array(
    [(g, g, g) for g in _PALETTE_GREYS]
    + [*ARTERY_COLOURS.values(), UNASSIGNED_COLOUR]
    + [(0, 0, 0)] * (256 - len(_PALETTE_GREYS) - len(ARTERY_COLOURS) - 1),
    dtype=np.int32,
)


def _palette_png(rgb: npt.NDArray[np.uint8]) -> bytes:
    """Encode an RGB key image as an 8-bit palette PNG (about half the size of RGB).

    Greys from 16 up and the outline colours are kept exactly; other colours (the anti-aliased
    edges of label text) take the nearest palette entry.
    """
    packed = (
        rgb[..., 0].astype(np.int32) << 16 | rgb[..., 1].astype(np.int32) << 8 | rgb[..., 2]
    ).ravel()
    unique, inverse = np.unique(packed, return_inverse=True)
    colours = np.stack([(unique >> 16) & 255, (unique >> 8) & 255, unique & 255], axis=1)
    distance = ((colours[:, None, :] - _PALETTE[None, :, :]) ** 2).sum(axis=2)
    index = distance.argmin(axis=1).astype(np.uint8)[inverse].reshape(rgb.shape[:2])
    image = Image.fromarray(index, mode="P")
    image.putpalette(_PALETTE.astype(np.uint8).ravel().tolist())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def choose_key_slices(targets: Sequence[Candidate], max_images: int) -> tuple[list[int], list[int]]:
    """Pick few slices that together show every target candidate (greedy set cover).

    Each round takes the slice that shows the most not-yet-shown targets, breaking ties by the
    larger cross-section of those targets (a lesion is easiest to see where it is widest), then
    by the lower slice index so the choice is deterministic.

    Returns
    -------
    tuple of (list of int, list of int)
        The chosen slice indices in ascending order, and the ids of targets left unshown because
        ``max_images`` was reached.
    """
    remaining = {c.lesion_id: c for c in targets}
    chosen: list[int] = []
    while remaining and len(chosen) < max_images:
        best_key: tuple[int, float, int] | None = None
        best_z = -1
        slices = sorted(set().union(*(_slices_of(c) for c in remaining.values())))
        for z in slices:
            shown = [c for c in remaining.values() if z in _slices_of(c)]
            key = (len(shown), sum(_area_in(c, z) for c in shown), -z)
            if best_key is None or key > best_key:
                best_key, best_z = key, z
        chosen.append(best_z)
        remaining = {i: c for i, c in remaining.items() if best_z not in _slices_of(c)}
    return sorted(chosen), sorted(remaining)


def _crop_box(
    targets: Iterable[Candidate], shape_yx: tuple[int, int], spacing_mm: tuple[float, float]
) -> tuple[int, int, int, int]:
    """A square-in-mm box around the targets, with a margin, inside the slice."""
    rows = np.concatenate([c.rows for t in targets for c in t.components])
    cols = np.concatenate([c.cols for t in targets for c in t.components])
    centre_r = (int(rows.min()) + int(rows.max())) / 2
    centre_c = (int(cols.min()) + int(cols.max())) / 2
    half_r_mm = max(
        (int(rows.max()) - int(rows.min())) * spacing_mm[0] / 2 + CROP_MARGIN_MM, MIN_FIELD_MM / 2
    )
    half_c_mm = max(
        (int(cols.max()) - int(cols.min())) * spacing_mm[1] / 2 + CROP_MARGIN_MM, MIN_FIELD_MM / 2
    )
    half_mm = max(half_r_mm, half_c_mm)
    half_r = half_mm / spacing_mm[0]
    half_c = half_mm / spacing_mm[1]
    n_rows, n_cols = shape_yx
    r0 = max(0, math.floor(centre_r - half_r))
    r1 = min(n_rows, math.ceil(centre_r + half_r) + 1)
    c0 = max(0, math.floor(centre_c - half_c))
    c1 = min(n_cols, math.ceil(centre_c + half_c) + 1)
    return r0, r1, c0, c1


def _window(
    hu: npt.NDArray[np.floating] | npt.NDArray[np.integer], window_hu: tuple[float, float]
) -> npt.NDArray[np.uint8]:
    width, level = window_hu
    low = level - width / 2
    scaled = (hu.astype(np.float32) - low) / width * 255.0
    return np.asarray(np.clip(np.rint(scaled), 0, 255), dtype=np.uint8)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _component_mask(
    candidate: Candidate, z: int, crop: tuple[int, int, int, int]
) -> npt.NDArray[np.bool_] | None:
    r0, r1, c0, c1 = crop
    mask = np.zeros((r1 - r0, c1 - c0), dtype=bool)
    found = False
    for comp in candidate.components:
        if comp.slice_index != z:
            continue
        rr = comp.rows.astype(np.int64) - r0
        cc = comp.cols.astype(np.int64) - c0
        inside = (rr >= 0) & (rr < mask.shape[0]) & (cc >= 0) & (cc < mask.shape[1])
        if inside.any():
            mask[rr[inside], cc[inside]] = True
            found = True
    return mask if found else None


def _ring(mask_up: npt.NDArray[np.bool_], width: int) -> npt.NDArray[np.bool_]:
    """Pixels just outside the mask, ``width`` pixels thick (the lesion itself stays visible)."""
    grown = ndimage.binary_dilation(mask_up, iterations=width)
    return np.asarray(grown & ~mask_up, dtype=bool)


def _upscale(mask: npt.NDArray[np.bool_], scale: int) -> npt.NDArray[np.bool_]:
    return np.asarray(np.repeat(np.repeat(mask, scale, axis=0), scale, axis=1), dtype=bool)


def _label_box(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    colour: RGB,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    bounds: tuple[int, int],
) -> None:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    w, h = right - left + 8, bottom - top + 6
    x = min(max(xy[0], 0), bounds[0] - w)
    y = min(max(xy[1], 0), bounds[1] - h)
    draw.rectangle((x, y, x + w, y + h), fill=(0, 0, 0))
    draw.text((x + 4 - left, y + 3 - top), text, fill=colour, font=font)


def _legend(
    draw: ImageDraw.ImageDraw, top: int, width: int, arteries: Sequence[Artery | None]
) -> None:
    font = _font(15)
    x = 10
    y = top + 12
    entries: list[tuple[str, RGB, bool]] = [
        (
            a.value if a is not None else "scored (no artery)",
            ARTERY_COLOURS[a] if a is not None else UNASSIGNED_COLOUR,
            False,
        )
        for a in arteries
    ]
    entries.append(("excluded", EXCLUDED_COLOUR, True))
    for text, colour, dashed in entries:
        if dashed:
            for dx in range(0, 22, 6):
                draw.line((x + dx, y + 8, x + dx + 3, y + 8), fill=colour, width=2)
        else:
            draw.rectangle((x, y + 2, x + 22, y + 14), outline=colour, width=4)
        draw.text((x + 28, y), text, fill=(255, 255, 255), font=font)
        x += 28 + int(draw.textlength(text, font=font)) + 18
        if x > width - 60:
            break


def render_key_images(
    volume: CTVolume,
    candidates: CandidateSet,
    score: ScoreResult,
    *,
    window_hu: tuple[float, float] = DEFAULT_WINDOW_HU,
    max_images: int = 8,
) -> KeyImageSet:
    """Draw the key images of a scored study.

    Parameters
    ----------
    volume
        The CT volume the candidates were found in (``(z, y, x)``, HU).
    candidates
        Every candidate of the volume (:func:`scoring.find_candidates`).
    score
        The score of those candidates: its ``lesions`` are outlined in their artery's colour,
        its ``excluded`` candidates faintly with their reason.
    window_hu
        Display window ``(width, level)`` in HU; default W 800 / L 200.
    max_images
        The most images drawn. When the scored lesions need more slices, the rest are listed in
        :attr:`KeyImageSet.not_shown_lesion_ids`.

    Returns
    -------
    KeyImageSet
        No images when nothing was scored and nothing excluded. With no scored lesion, up to
        two slices show the excluded candidates, so a reviewer can check what was left out.

    Raises
    ------
    InvalidReportInputError
        If the candidates were found in a volume of another shape, a lesion of the score is not
        among the candidates, or ``max_images`` / the window is not positive.
    """
    if tuple(candidates.shape) != volume.shape:
        raise InvalidReportInputError(
            f"candidates were found in a volume of shape {candidates.shape}, "
            f"but the volume has shape {volume.shape}"
        )
    if max_images < 1:
        raise InvalidReportInputError(f"max_images must be at least 1, got {max_images}")
    if window_hu[0] <= 0:
        raise InvalidReportInputError(f"window width must be positive, got {window_hu[0]}")
    by_id = candidates.by_id()
    missing = [les.lesion_id for les in score.lesions if les.lesion_id not in by_id] + [
        exc.lesion_id for exc in score.excluded if exc.lesion_id not in by_id
    ]
    if missing:
        raise InvalidReportInputError(
            f"lesions {missing} of the score are not among the candidates: pass the candidate "
            "set the score was computed from"
        )
    artery_of = {les.lesion_id: les.artery for les in score.lesions}
    reason_of = {exc.lesion_id: exc.reason.value for exc in score.excluded}
    scored = [by_id[i] for i in artery_of]
    excluded = [by_id[i] for i in reason_of]
    targets, limit = (scored, max_images) if scored else (excluded, min(2, max_images))
    if not targets:
        return KeyImageSet((), (), window_hu)
    slices, not_shown = choose_key_slices(targets, limit)
    spacing = volume.geometry.pixel_spacing_mm
    crop = _crop_box(targets, volume.shape[1:], spacing)
    _r0, _r1, c0, c1 = crop
    scale = max(1, min(MAX_SCALE, round(TARGET_WIDTH_PX / (c1 - c0))))
    present_arteries: list[Artery | None] = [a for a in ARTERIES if a in artery_of.values()]
    if None in artery_of.values():
        present_arteries.append(None)
    images = [
        _draw_slice(
            volume,
            z,
            crop,
            scale,
            window_hu,
            scored,
            excluded,
            artery_of,
            reason_of,
            present_arteries or list(ARTERIES),
        )
        for z in slices
    ]
    return KeyImageSet(tuple(images), tuple(not_shown if scored else ()), window_hu)


def _draw_slice(
    volume: CTVolume,
    z: int,
    crop: tuple[int, int, int, int],
    scale: int,
    window_hu: tuple[float, float],
    scored: Sequence[Candidate],
    excluded: Sequence[Candidate],
    artery_of: dict[int, Artery | None],
    reason_of: dict[int, str],
    legend_arteries: Sequence[Artery | None],
) -> KeyImage:
    r0, r1, c0, c1 = crop
    grey = _window(volume.hu[z, r0:r1, c0:c1], window_hu)
    h, w = grey.shape[0] * scale, grey.shape[1] * scale
    # nearest neighbour: each CT pixel is a scale x scale block, so a reviewer sees the true
    # voxels the score counted (and the PNG compresses about 3x better than interpolated)
    base = Image.fromarray(grey, mode="L").resize((w, h), Image.Resampling.NEAREST)
    canvas = np.asarray(base.convert("RGB")).copy()
    yy, xx = np.mgrid[0:h, 0:w]
    dashes = ((yy + xx) // 5) % 2 == 0
    labels: list[tuple[tuple[float, float], str, RGB, int]] = []
    shown_excluded: list[int] = []
    for cand in excluded:
        mask = _component_mask(cand, z, crop)
        if mask is None:
            continue
        mask_up = _upscale(mask, scale)
        canvas[_ring(mask_up, 1) & dashes] = EXCLUDED_COLOUR
        shown_excluded.append(cand.lesion_id)
        if reason_of[cand.lesion_id] == _UNLABELLED_REASON:
            # bone is plain to any reader and often many pieces (ribs, spine, sternum): outline
            # only, so the labels that matter stay legible
            continue
        rows, cols = np.nonzero(mask_up)
        labels.append(
            (
                (float(cols.max()) + 6, float(rows.min()) - 4),
                f"#{cand.lesion_id} excluded: {reason_of[cand.lesion_id].replace('_', ' ')}",
                EXCLUDED_COLOUR,
                13,
            )
        )
    shown_scored: list[int] = []
    for cand in scored:
        mask = _component_mask(cand, z, crop)
        if mask is None:
            continue
        mask_up = _upscale(mask, scale)
        artery = artery_of[cand.lesion_id]
        colour = ARTERY_COLOURS[artery] if artery is not None else UNASSIGNED_COLOUR
        canvas[_ring(mask_up, max(2, scale))] = colour
        shown_scored.append(cand.lesion_id)
        rows, cols = np.nonzero(mask_up)
        name = artery.value if artery is not None else "scored"
        labels.append(
            (
                (float(cols.max()) + 8, float(rows.min()) - 8),
                f"{name} #{cand.lesion_id}",
                colour,
                17,
            )
        )
    total_h = _HEADER_PX + h + _LEGEND_PX
    total_w = max(w, 480)
    image = Image.new("RGB", (total_w, total_h), (0, 0, 0))
    image.paste(Image.fromarray(canvas, mode="RGB"), (0, _HEADER_PX))
    draw = ImageDraw.Draw(image)
    # scored labels last, so they sit on top of faint ones
    for (lx, ly), text, colour, size in labels:
        _label_box(draw, (lx, ly + _HEADER_PX), text, colour, _font(size), (w, _HEADER_PX + h))
    geometry = volume.geometry
    position = tuple(float(v) for v in geometry.slice_positions_mm[z])
    header = (
        f"Slice {z + 1} of {volume.shape[0]}   z = {position[2]:.1f} mm   "
        f"W {window_hu[0]:g} / L {window_hu[1]:g}"
    )
    draw.text((8, 7), header, fill=(255, 255, 255), font=_font(15))
    if geometry.row_direction[0] > 0.9 and geometry.column_direction[1] > 0.9:
        # (0020,0037) rows run to the patient's left and columns to the back: the usual
        # radiological display, patient's right on the viewer's left.
        font = _font(16)
        mid = _HEADER_PX + h // 2
        draw.text((6, mid - 8), "R", fill=(255, 255, 255), font=font)
        draw.text((w - 16, mid - 8), "L", fill=(255, 255, 255), font=font)
        draw.text((w // 2 - 5, _HEADER_PX + 4), "A", fill=(255, 255, 255), font=font)
    _legend(draw, _HEADER_PX + h, total_w, legend_arteries)
    png = _palette_png(np.asarray(image))
    parts = [
        f"{artery_of[i].value if artery_of[i] is not None else 'scored'} #{i}"  # type: ignore[union-attr]
        for i in shown_scored
    ]
    caption = f"Slice {z + 1}: " + (", ".join(parts) if parts else "no scored lesion")
    named = [i for i in shown_excluded if reason_of[i] != _UNLABELLED_REASON]
    bones = [i for i in shown_excluded if reason_of[i] == _UNLABELLED_REASON]
    if named:
        caption += "; excluded " + ", ".join(
            f"#{i} ({reason_of[i].replace('_', ' ')})" for i in named
        )
    if bones:
        caption += f"; {len(bones)} bone candidate{'s' if len(bones) > 1 else ''} outlined"
    return KeyImage(
        png=png,
        slice_index=z,
        position_mm=(position[0], position[1], position[2]),
        scored_lesion_ids=tuple(shown_scored),
        excluded_lesion_ids=tuple(shown_excluded),
        crop=crop,
        scale=scale,
        caption=caption,
    )
