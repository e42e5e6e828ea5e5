"""Key images: which slices, which outlines in which colour, and where."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from reports.errors import InvalidReportInputError
from reports.key_images import (
    ARTERY_COLOURS,
    EXCLUDED_COLOUR,
    KeyImage,
    choose_key_slices,
    render_key_images,
)
from scoring import Artery, CTVolume, find_candidates, score_candidates
from tests.reports.conftest import AORTA_PLACE, LESION_PLACES, Study, make_study

HEADER_PX = 30
LEGEND_PX = 40


def _pixels(key: KeyImage) -> np.ndarray:
    with Image.open(io.BytesIO(key.png)) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def _colour_mask(pixels: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    return np.all(pixels == np.array(colour, dtype=np.uint8), axis=-1)


def _image_xy(key: KeyImage, row: float, col: float) -> tuple[float, float]:
    r0, _r1, c0, _c1 = key.crop
    return (col - c0 + 0.5) * key.scale, (row - r0 + 0.5) * key.scale + HEADER_PX


class TestChooseKeySlices:
    def test_one_slice_per_lesion_when_they_do_not_overlap(self, four_artery_study: Study) -> None:
        scored = [
            c
            for c in four_artery_study.candidates.candidates
            if c.lesion_id in {les.lesion_id for les in four_artery_study.score.lesions}
        ]
        slices, left = choose_key_slices(scored, 8)
        assert len(slices) == 4
        assert left == []
        for cand in scored:
            assert any(cand.slice_range[0] <= z <= cand.slice_range[1] for z in slices)

    def test_shared_slice_shows_overlapping_lesions_together(self) -> None:
        places = {Artery.LM: (6, 80, 110), Artery.LAD: (7, 70, 125), Artery.RCA: (8, 105, 72)}
        study = make_study({Artery.LM: 3, Artery.LAD: 3, Artery.RCA: 3}, places=places)
        scored = [
            c
            for c in study.candidates.candidates
            if c.lesion_id in {les.lesion_id for les in study.score.lesions}
        ]
        assert choose_key_slices(scored, 8) == ([8], [])

    def test_limit_leaves_the_rest_listed(self, four_artery_study: Study) -> None:
        scored = [
            c
            for c in four_artery_study.candidates.candidates
            if c.lesion_id in {les.lesion_id for les in four_artery_study.score.lesions}
        ]
        slices, left = choose_key_slices(scored, 2)
        assert len(slices) == 2
        assert len(left) == 2


class TestRenderKeyImages:
    def test_every_scored_lesion_is_outlined_in_its_arterys_colour(
        self, four_artery_study: Study
    ) -> None:
        study = four_artery_study
        keys = render_key_images(study.volume, study.candidates, study.score)
        artery_of = {les.lesion_id: les.artery for les in study.score.lesions}
        shown = [i for key in keys.images for i in key.scored_lesion_ids]
        assert sorted(shown) == sorted(artery_of)
        assert keys.not_shown_lesion_ids == ()
        for key in keys.images:
            pixels = _pixels(key)[HEADER_PX:-LEGEND_PX]  # the legend shows every colour
            present = {artery_of[i] for i in key.scored_lesion_ids}
            for artery in Artery:
                count = int(_colour_mask(pixels, ARTERY_COLOURS[artery]).sum())
                if artery in present:
                    assert count > 50, (artery, key.caption)
                else:
                    assert count < 5, (artery, key.caption)

    def test_outline_rings_the_lesion_and_leaves_it_visible(self, four_artery_study: Study) -> None:
        study = four_artery_study
        keys = render_key_images(study.volume, study.candidates, study.score)
        for key in keys.images:
            pixels = _pixels(key)
            for lesion_id in key.scored_lesion_ids:
                artery = next(
                    les.artery for les in study.score.lesions if les.lesion_id == lesion_id
                )
                assert artery is not None
                _z0, row, col = LESION_PLACES[artery]
                x, y = _image_xy(key, row, col)
                mask = _colour_mask(pixels, ARTERY_COLOURS[artery])
                ys, xs = np.nonzero(mask)
                near = (np.abs(xs - x) < 10 * key.scale) & (np.abs(ys - y) < 10 * key.scale)
                assert near.sum() > 50
                # the ring is centred on the lesion, and the calcium inside is not painted over
                assert abs(xs[near].mean() - x) < key.scale * 1.5
                assert abs(ys[near].mean() - y) < key.scale * 1.5
                assert not mask[round(y), round(x)]
                # 450 HU in W 800 / L 200: (450 - (200 - 400)) / 800 x 255 = 207
                assert pixels[round(y), round(x)].tolist() == [207, 207, 207]

    def test_excluded_candidates_are_drawn_faintly_with_their_reason(
        self, four_artery_study: Study
    ) -> None:
        study = four_artery_study
        keys = render_key_images(study.volume, study.candidates, study.score)
        aorta = next(e for e in study.score.excluded if e.reason.value == "aorta")
        key = next(k for k in keys.images if aorta.lesion_id in k.excluded_lesion_ids)
        assert f"#{aorta.lesion_id} (aorta)" in key.caption
        # bone is outlined without a label, and counted in the caption
        assert "1 bone candidate outlined" in key.caption
        pixels = _pixels(key)
        x, y = _image_xy(key, AORTA_PLACE[1], AORTA_PLACE[2])
        ys, xs = np.nonzero(_colour_mask(pixels, EXCLUDED_COLOUR))
        near = (np.abs(xs - x) < 6 * key.scale) & (np.abs(ys - y) < 6 * key.scale)
        assert near.sum() > 10

    def test_legend_names_the_arteries(self, four_artery_study: Study) -> None:
        study = four_artery_study
        key = render_key_images(study.volume, study.candidates, study.score).images[0]
        legend = _pixels(key)[-LEGEND_PX:]
        for artery in Artery:
            assert _colour_mask(legend, ARTERY_COLOURS[artery]).sum() > 20

    def test_nothing_to_show(self) -> None:
        study = make_study({})
        no_calcium = CTVolume(
            hu=np.minimum(study.volume.hu, 100).astype(np.int16), geometry=study.volume.geometry
        )
        candidates = find_candidates(no_calcium)
        empty = score_candidates(candidates, {}, roi="labels")
        assert candidates.candidates == ()
        assert render_key_images(no_calcium, candidates, empty).images == ()

    def test_zero_score_shows_the_excluded_candidates(self) -> None:
        study = make_study({})
        keys = render_key_images(study.volume, study.candidates, study.score)
        assert 1 <= len(keys.images) <= 2
        assert {i for k in keys.images for i in k.excluded_lesion_ids} == {
            e.lesion_id for e in study.score.excluded
        }
        assert all(k.scored_lesion_ids == () for k in keys.images)


class TestArguments:
    def test_candidates_of_another_volume(self, four_artery_study: Study) -> None:
        other = make_study({Artery.LM: 3})
        small = other.volume.__class__(
            hu=other.volume.hu[:10],
            geometry=other.volume.geometry.__class__(
                pixel_spacing_mm=other.volume.geometry.pixel_spacing_mm,
                row_direction=(1.0, 0.0, 0.0),
                column_direction=(0.0, 1.0, 0.0),
                slice_positions_mm=other.volume.geometry.slice_positions_mm[:10],
                slice_thickness_mm=3.0,
                increment_mm=3.0,
            ),
        )
        with pytest.raises(InvalidReportInputError, match="shape"):
            render_key_images(small, four_artery_study.candidates, four_artery_study.score)

    def test_score_of_other_candidates(self, four_artery_study: Study) -> None:
        other = make_study({Artery.LM: 3})
        with pytest.raises(InvalidReportInputError, match="not among the candidates"):
            render_key_images(other.volume, other.candidates, four_artery_study.score)

    def test_max_images(self, four_artery_study: Study) -> None:
        s = four_artery_study
        with pytest.raises(InvalidReportInputError, match="max_images"):
            render_key_images(s.volume, s.candidates, s.score, max_images=0)
