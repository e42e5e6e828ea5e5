"""Automatic coronary calcium detection on constructed chests and on chest phantom studies."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from phantom.chest import ChestPhantomConfig, chest_phantom
from phantom.study import Distractor, PhantomStudy
from scoring import (
    Artery,
    CandidateSet,
    CTVolume,
    ExclusionReason,
    InvalidVolumeError,
    WarningCode,
    axial_geometry,
    find_candidates,
    score_candidates,
)
from scoring.coronary import CoronaryLabelling, detect_coronary_calcium
from scoring.coronary.detect import AORTIC_ROOT_BEARING_DEG, _artery, _Frame, _territory_angle
from tests.scoring.coronary.chest import Chest, build_chest

OBJECTS = [
    "LM",
    "LAD",
    "LCX",
    "RCA",
    "valve",
    "mitral",
    "desc_wall",
    "asc_wall",
    "pericardium",
    "lung_nodule",
    "rib",
    "clip",
]


def _label_near(
    chest: Chest, labelling: CoronaryLabelling, name: str, candidates_set: object
) -> Artery | ExclusionReason | None:
    """The decision for the candidate nearest the named object (within 3 mm)."""
    centre = np.asarray(chest.centres_mm[name])
    cands = candidates_set.candidates  # type: ignore[attr-defined]
    best = min(cands, key=lambda c: float(np.linalg.norm(np.asarray(c.centroid_mm) - centre)))
    assert float(np.linalg.norm(np.asarray(best.centroid_mm) - centre)) < 3.0
    label = labelling.labels[best.lesion_id]
    return label.artery or label.excluded


@pytest.fixture(scope="module", params=["clean", "noisy", "x-reversed"])
def chest_case(request: pytest.FixtureRequest) -> tuple[Chest, object, CoronaryLabelling]:
    kwargs = {
        "clean": {},
        "noisy": {"noise_sd_hu": 25.0, "seed": 3},
        "x-reversed": {"flip_x": True},
    }[request.param]
    chest = build_chest(**kwargs)  # type: ignore[arg-type]
    candidates = find_candidates(chest.volume)
    return chest, candidates, detect_coronary_calcium(chest.volume, candidates)


class TestConstructedChest:
    @pytest.mark.parametrize("name", OBJECTS)
    def test_each_object_gets_its_decision(
        self, chest_case: tuple[Chest, object, CoronaryLabelling], name: str
    ) -> None:
        chest, candidates, labelling = chest_case
        assert _label_near(chest, labelling, name, candidates) == chest.expected[name]

    def test_every_candidate_is_labelled_with_a_reason(
        self, chest_case: tuple[Chest, object, CoronaryLabelling]
    ) -> None:
        _, candidates, labelling = chest_case
        ids = {c.lesion_id for c in candidates.candidates}  # type: ignore[attr-defined]
        assert set(labelling.labels) == ids
        for label in labelling.labels.values():
            assert (label.artery is None) != (label.excluded is None)
            assert label.detail

    def test_noise_is_never_scored(
        self, chest_case: tuple[Chest, object, CoronaryLabelling]
    ) -> None:
        chest, candidates, labelling = chest_case
        centres = [np.asarray(p) for p in chest.centres_mm.values()]
        for cand in candidates.candidates:  # type: ignore[attr-defined]
            if labelling.labels[cand.lesion_id].scored:
                nearest = min(
                    float(np.linalg.norm(np.asarray(cand.centroid_mm) - p)) for p in centres
                )
                assert nearest < 5.0

    def test_metal_warning(self, chest_case: tuple[Chest, object, CoronaryLabelling]) -> None:
        _, _, labelling = chest_case
        codes = [w.code for w in labelling.warnings]
        assert codes == [WarningCode.METAL]

    def test_anatomy_record(self, chest_case: tuple[Chest, object, CoronaryLabelling]) -> None:
        _, _, labelling = chest_case
        anatomy = labelling.anatomy
        assert anatomy is not None
        assert anatomy.aortic_root_mm is not None
        assert anatomy.aortic_root_radius_mm == pytest.approx(14.0, abs=2.5)
        # the construction's descending aorta is centred at x = 24, y = 45 mm
        desc = np.asarray(anatomy.descending_aorta_mm)
        assert np.allclose(np.median(desc[:, :2], axis=0), (24.0, 45.0), atol=3.0)
        assert anatomy.heart_centre_mm is not None
        assert np.allclose(anatomy.heart_centre_mm, (12.0, -5.0, 45.0), atol=10.0)
        assert anatomy.long_axis is not None
        assert float(np.dot(anatomy.long_axis, (1.0, -0.8, -1.0))) > 1.4

    def test_per_artery_scores(self, chest_case: tuple[Chest, object, CoronaryLabelling]) -> None:
        _, candidates, labelling = chest_case
        result = score_candidates(candidates, labelling.labels, roi="auto")  # type: ignore[arg-type]
        assert all(result.agatston_by_artery[a] > 0 for a in Artery)
        assert result.agatston == pytest.approx(sum(result.agatston_by_artery.values()))


#: The constructed chest as built, with correlated noise, and stored with x reversed.
CHEST_VARIANTS: list[dict[str, object]] = [
    {},
    {"noise_sd_hu": 25.0, "seed": 3},
    {"flip_x": True},
]


def _detect(**kwargs: object) -> tuple[Chest, CandidateSet, CoronaryLabelling]:
    """Build the constructed chest with ``kwargs`` and label its candidates."""
    chest = build_chest(**kwargs)  # type: ignore[arg-type]
    candidates = find_candidates(chest.volume)
    return chest, candidates, detect_coronary_calcium(chest.volume, candidates)


class TestAnatomicalVariants:
    """Calcifications told apart by the direction they run, not only by where they lie."""

    @pytest.mark.parametrize("kwargs", CHEST_VARIANTS)
    def test_ostial_left_main_straddling_the_root_wall_is_left_main(
        self, kwargs: dict[str, object]
    ) -> None:
        chest, candidates, labelling = _detect(ostial_left_main=True, **kwargs)
        assert _label_near(chest, labelling, "LM", candidates) is Artery.LM

    @pytest.mark.parametrize("kwargs", CHEST_VARIANTS)
    def test_circumflex_running_around_the_base_near_the_bifurcation(
        self, kwargs: dict[str, object]
    ) -> None:
        # its centre lies in the LAD's sector (about 45 deg): the direction it runs decides
        chest, candidates, labelling = _detect(bifurcation_lcx=True, **kwargs)
        assert _label_near(chest, labelling, "LCX_bifurcation", candidates) is Artery.LCX
        assert _label_near(chest, labelling, "LAD", candidates) is Artery.LAD

    @pytest.mark.parametrize("kwargs", CHEST_VARIANTS)
    def test_ostial_rca_running_out_of_the_root_in_its_vessel_is_rca(
        self, kwargs: dict[str, object]
    ) -> None:
        # starts in the root's wall, runs outward on the right, little fat around it: neither
        # aortic wall (which stays within the wall) nor valve (which stays within the root)
        chest, candidates, labelling = _detect(ostial_rca=True, **kwargs)
        assert _label_near(chest, labelling, "RCA_ostial", candidates) is Artery.RCA
        assert _label_near(chest, labelling, "valve", candidates) is ExclusionReason.AORTIC_VALVE

    @pytest.mark.parametrize("kwargs", CHEST_VARIANTS)
    def test_large_plaque_filling_its_vessel_on_the_surface_is_coronary(
        self, kwargs: dict[str, object]
    ) -> None:
        # little fat around it (its own vessel surrounds it), yet outside the heart's muscle:
        # not calcium in the blood pool
        chest, candidates, labelling = _detect(sleeved_lad=True, **kwargs)
        assert _label_near(chest, labelling, "LAD", candidates) is Artery.LAD
        assert _label_near(chest, labelling, "mitral", candidates) is (
            ExclusionReason.MITRAL_ANNULUS
        )

    @pytest.mark.parametrize("kwargs", CHEST_VARIANTS)
    def test_calcium_off_the_right_ventricles_free_wall_is_pericardial(
        self, kwargs: dict[str, object]
    ) -> None:
        # 6 mm out from the muscle: in the deep fat of the right atrioventricular groove that
        # is the RCA; far toward the apex, over the free wall's thin fat, the pericardium
        chest, candidates, labelling = _detect(free_wall_pericardium=True, **kwargs)
        assert _label_near(chest, labelling, "free_wall", candidates) is (
            ExclusionReason.PERICARDIUM
        )
        assert _label_near(chest, labelling, "RCA", candidates) is Artery.RCA
        details = [label.detail for label in labelling.labels.values()]
        assert any("right ventricle's free wall" in detail for detail in details)

    @pytest.mark.parametrize("kwargs", CHEST_VARIANTS)
    def test_long_band_in_the_muscle_is_annular_not_coronary(
        self, kwargs: dict[str, object]
    ) -> None:
        # little fat around it and just outside the heart's coarse mask, like a large plaque
        # filling its vessel, but far longer: annular calcification, whatever its angle
        chest, candidates, labelling = _detect(annular_band=True, **kwargs)
        assert _label_near(chest, labelling, "annular_band", candidates) is (
            ExclusionReason.MITRAL_ANNULUS
        )
        assert _label_near(chest, labelling, "RCA", candidates) is Artery.RCA

    @pytest.mark.parametrize("kwargs", CHEST_VARIANTS)
    def test_calcium_wider_than_a_coronary_artery_is_not_coronary(
        self, kwargs: dict[str, object]
    ) -> None:
        # both lie in the epicardial fat where the RCA runs; a plate 14 mm across is the
        # pericardium, a ball 12 mm wide a calcified node: no coronary artery is that wide
        chest, candidates, labelling = _detect(wide_calcium=True, **kwargs)
        assert _label_near(chest, labelling, "plate", candidates) is ExclusionReason.PERICARDIUM
        assert _label_near(chest, labelling, "node", candidates) is ExclusionReason.OUTSIDE_HEART
        assert _label_near(chest, labelling, "RCA", candidates) is Artery.RCA
        assert _label_near(chest, labelling, "LAD", candidates) is Artery.LAD
        details = [label.detail for label in labelling.labels.values()]
        assert any("too wide for a coronary artery" in detail for detail in details)

    @pytest.mark.parametrize("kwargs", CHEST_VARIANTS)
    def test_calcium_outside_the_lungs_hull_is_bone_even_beside_the_heart(
        self, kwargs: dict[str, object]
    ) -> None:
        # 5 mm in front of the heart's muscle, but in the chest wall
        chest, candidates, labelling = _detect(chest_wall_cartilage=True, **kwargs)
        assert _label_near(chest, labelling, "cartilage", candidates) is ExclusionReason.BONE
        assert _label_near(chest, labelling, "LAD", candidates) is Artery.LAD


def _upright_frame() -> _Frame:
    """A cardiac frame whose long axis points straight down (canonical mm: x left, y
    posterior, z superior), origin at 0; the heart's centre lies 40 mm below it and 30 mm to
    the right of the axis (a heart whose right side is large). The territories turn about the
    vertical through the heart's centre, the aortic root at its usual bearing (no turn)."""
    down = np.array([0.0, 0.0, -1.0])
    return _Frame(
        exit=np.zeros(3),
        aorta_direction=down,
        aorta_radius_mm=14.0,
        origin=np.zeros(3),
        long_axis=down,
        left=np.array([1.0, 0.0, 0.0]),
        anterior=np.array([0.0, -1.0, 0.0]),
        base_offset_mm=-10.0,
        heart_centre=np.array([-30.0, 0.0, -40.0]),
        territory_axis=down,
        territory_anterior=np.array([0.0, -1.0, 0.0]),
        territory_left=np.array([1.0, 0.0, 0.0]),
        root_bearing_deg=AORTIC_ROOT_BEARING_DEG,
    )


class TestPosteriorTerritory:
    """At the back of the base: the crux near the heart's middle, the LCX well to its left."""

    @pytest.mark.parametrize("x_mm", [-10.0, 5.0])
    def test_posterior_base_well_left_of_centre_is_lcx(self, x_mm: float) -> None:
        # posterior, to the right of the long axis or just left of it (-175 to +178 deg), yet
        # 20-35 mm left of the heart's centre: the left atrioventricular groove
        p = np.array([x_mm, 120.0, -10.0])
        artery, why = _artery(_upright_frame(), p, {})
        assert artery is Artery.LCX
        assert "left of the heart's centre" in why

    def test_posterior_base_near_the_middle_is_rca(self) -> None:
        # just right of the heart centre's posterior midline, at the base
        p = np.array([-35.0, 60.0, -10.0])
        assert _artery(_upright_frame(), p, {})[0] is Artery.RCA

    def test_posterior_toward_the_apex_is_the_posterior_descending_artery(self) -> None:
        # left of the centre but far toward the apex: the posterior interventricular groove
        p = np.array([-10.0, 120.0, -60.0])
        assert _artery(_upright_frame(), p, {})[0] is Artery.RCA


class TestTerritoriesTurnWithTheHeart:
    """The territories' reference turns with the aortic root about the heart's long axis."""

    def test_a_heart_turned_about_its_axis_keeps_its_territories(self) -> None:
        frame = _upright_frame()
        p = np.array([-10.0, -40.0, -30.0])
        turn = np.radians(40.0)
        # turn the point, the root and the heart's centre by 40 deg about a vertical axis
        rot = np.array(
            [[np.cos(turn), -np.sin(turn), 0.0], [np.sin(turn), np.cos(turn), 0.0], [0, 0, 1.0]]
        )
        centre = frame.heart_centre
        turned_root = centre + rot @ (frame.exit - centre)
        to_root = turned_root - centre
        bearing = float(np.degrees(np.arctan2(to_root[0], -to_root[1])))
        base = float(np.degrees(np.arctan2(-frame.heart_centre[0], frame.heart_centre[1])))
        turned = replace(frame, exit=turned_root, root_bearing_deg=bearing)
        unturned = replace(frame, root_bearing_deg=base)
        assert _territory_angle(turned, centre + rot @ (p - centre)) == pytest.approx(
            _territory_angle(unturned, p)
        )


class TestAnteriorTerritory:
    """In front: the LAD left of the aortic root, the RCA right of it."""

    def test_anterior_calcium_right_of_the_root_is_rca(self) -> None:
        # in the LAD's sector (+22 deg around the heart's centre) yet 6 mm right of the root
        p = np.array([-6.0, -60.0, -20.0])
        artery, why = _artery(_upright_frame(), p, {})
        assert artery is Artery.RCA
        assert "right of the aortic root" in why

    def test_anterior_calcium_left_of_the_root_is_lad(self) -> None:
        p = np.array([6.0, -60.0, -20.0])
        assert _artery(_upright_frame(), p, {})[0] is Artery.LAD


class TestZeroCalcium:
    def test_noisy_chest_without_calcium_scores_zero(self) -> None:
        chest = build_chest(noise_sd_hu=30.0, seed=11, calcium=False)
        candidates = find_candidates(chest.volume)
        labelling = detect_coronary_calcium(chest.volume, candidates)
        result = score_candidates(candidates, labelling.labels, roi="auto")
        assert result.agatston == 0.0
        reasons = {label.excluded for label in labelling.labels.values()}
        assert None not in reasons


class TestFailures:
    def test_no_anatomy_warns_and_scores_nothing(self) -> None:
        hu = np.full((8, 64, 64), 40, dtype=np.int16)
        hu[3:5, 30:34, 30:34] = 500
        volume = CTVolume(hu=hu, geometry=axial_geometry(8, (1.0, 1.0), 3.0))
        candidates = find_candidates(volume)
        labelling = detect_coronary_calcium(volume, candidates)
        assert labelling.warnings[0].code is WarningCode.DETECTION
        assert all(not label.scored for label in labelling.labels.values())
        assert "review" in labelling.warnings[0].message

    def test_candidates_of_another_volume(self) -> None:
        chest = build_chest()
        other = CTVolume(
            hu=np.zeros((4, 16, 16), dtype=np.int16), geometry=axial_geometry(4, (1, 1), 3.0)
        )
        with pytest.raises(InvalidVolumeError, match="pass the volume given to find_candidates"):
            detect_coronary_calcium(other, find_candidates(chest.volume))


def _study(seed: int, **kwargs: object) -> PhantomStudy:
    return chest_phantom(ChestPhantomConfig.random(seed, **kwargs))  # type: ignore[arg-type]


@pytest.mark.slow
class TestChestPhantom:
    """Studies of the anthropomorphic phantom (generated by another module of the project)."""

    def test_per_artery_agatston_matches_truth(self) -> None:
        study = _study(3)
        candidates = find_candidates(study.volume)
        labelling = detect_coronary_calcium(study.volume, candidates)
        result = score_candidates(candidates, labelling.labels, roi="auto")
        truth = study.truth
        assert result.agatston == pytest.approx(truth.agatston, rel=0.1)
        right = sum(min(result.agatston_by_artery[a], truth.agatston_by_artery[a]) for a in Artery)
        assert right >= 0.8 * truth.agatston

    def test_zero_calcium_study_scores_zero(self) -> None:
        study = _study(2, zero_calcium=True)
        candidates = find_candidates(study.volume)
        labelling = detect_coronary_calcium(study.volume, candidates)
        assert score_candidates(candidates, labelling.labels, roi="auto").agatston == 0.0

    def test_distractors_are_excluded_with_their_reason(self) -> None:
        study = _study(1, heavy_distractors=True)
        candidates = find_candidates(study.volume)
        labelling = detect_coronary_calcium(study.volume, candidates)
        seen: dict[Distractor, int] = {}
        right: dict[Distractor, int] = {}
        for cand in candidates.candidates:
            idx = cand.voxel_indices()
            if np.count_nonzero(study.plaque_labels[idx]):
                continue
            codes = study.distractor_labels[idx]
            if not np.count_nonzero(codes):
                continue
            kind = Distractor(int(np.bincount(codes[codes > 0]).argmax()))
            label = labelling.labels[cand.lesion_id]
            seen[kind] = seen.get(kind, 0) + 1
            right[kind] = right.get(kind, 0) + int(label.excluded is kind.exclusion_reason)
        for kind in (Distractor.BONE, Distractor.AORTIC_VALVE, Distractor.MITRAL_ANNULUS):
            assert right.get(kind, 0) >= 0.5 * seen[kind], kind
