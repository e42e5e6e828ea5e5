"""The evaluation suite: seeded chest phantom studies spread across every variation.

Used by the automatic coronary detection benchmark. The suite stratifies (Latin-hypercube
style) the pixel spacing, noise level, patient size, heart size and heart orientation across the
studies, alternates 2.5 and 3.0 mm slices, makes every third calcified study an overlapping
reconstruction, and reserves about 15 % of the studies for zero coronary calcium and 15 % for
heavy distractors with little coronary calcium.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from phantom.chest import (
    NOISE_SD_RANGE_HU,
    PIXEL_SPACING_RANGE_MM,
    THICKNESS_CHOICES_MM,
    ChestPhantomConfig,
)
from phantom.errors import PhantomConfigError

#: Share of the suite with zero coronary calcium, and with heavy distractors.
ZERO_CALCIUM_SHARE = 0.15
HEAVY_DISTRACTOR_SHARE = 0.15

_STRATIFIED: dict[str, tuple[float, float]] = {
    "pixel_spacing_mm": PIXEL_SPACING_RANGE_MM,
    "noise_sd_hu": NOISE_SD_RANGE_HU,
    "patient_scale": (0.85, 1.2),
    "heart_scale": (0.85, 1.2),
    "heart_azimuth_deg": (28.0, 52.0),
    "heart_elevation_deg": (25.0, 45.0),
    "heart_roll_deg": (-15.0, 15.0),
}
_DIGITS = {"pixel_spacing_mm": 4, "noise_sd_hu": 1}


def evaluation_suite(n: int = 60, seed: int = 0) -> list[ChestPhantomConfig]:
    """Configurations of ``n`` chest phantom studies spread across the variations.

    Parameters
    ----------
    n
        Number of studies (at least 7, so that each kind is present).
    seed
        Fixes the suite: the same ``(n, seed)`` gives the same configurations.

    Returns
    -------
    list of ChestPhantomConfig
        Render each with :func:`phantom.chest.chest_phantom`. Study ``i`` has seed
        ``seed * 100003 + i``.

    Raises
    ------
    PhantomConfigError
        When ``n`` is smaller than 7.
    """
    if n < 7:
        raise PhantomConfigError(f"an evaluation suite needs at least 7 studies, got n={n}")
    rng = np.random.default_rng([seed, 7])
    n_zero = max(1, round(ZERO_CALCIUM_SHARE * n))
    n_heavy = max(1, round(HEAVY_DISTRACTOR_SHARE * n))
    kinds = np.array(["zero"] * n_zero + ["heavy"] * n_heavy + ["normal"] * (n - n_zero - n_heavy))
    rng.shuffle(kinds)
    columns = {
        name: lo + (rng.permutation(n) + rng.random(n)) / n * (hi - lo)
        for name, (lo, hi) in _STRATIFIED.items()
    }
    configs = []
    calcified = 0
    for i in range(n):
        overrides: dict[str, Any] = {
            name: round(float(values[i]), _DIGITS.get(name, 3)) for name, values in columns.items()
        }
        thickness = THICKNESS_CHOICES_MM[i % len(THICKNESS_CHOICES_MM)]
        overlapping = False
        if kinds[i] == "normal":
            overlapping = calcified % 3 == 2
            calcified += 1
        overrides["slice_thickness_mm"] = thickness
        overrides["increment_mm"] = thickness - 0.5 if overlapping else thickness
        configs.append(
            ChestPhantomConfig.random(
                seed * 100003 + i,
                zero_calcium=kinds[i] == "zero",
                heavy_distractors=kinds[i] == "heavy",
                **overrides,
            )
        )
    return configs


__all__ = ["HEAVY_DISTRACTOR_SHARE", "ZERO_CALCIUM_SHARE", "evaluation_suite"]
