"""The evaluation suite spreads its studies across every variation."""

from __future__ import annotations

import pytest

from phantom.errors import PhantomConfigError
from phantom.suite import evaluation_suite


class TestEvaluationSuite:
    def test_spread(self) -> None:
        suite = evaluation_suite(60, seed=0)
        assert len(suite) == 60
        assert len({c.seed for c in suite}) == 60
        zero = [c for c in suite if c.zero_calcium]
        heavy = [c for c in suite if c.sternal_wires > 0]
        assert len(zero) == 9
        assert len(heavy) == 9
        assert {c.slice_thickness_mm for c in suite} == {2.5, 3.0}
        overlapping = [c for c in suite if c.increment_mm < c.slice_thickness_mm]
        assert 8 <= len(overlapping) <= 20
        spacings = sorted(c.pixel_spacing_mm for c in suite)
        assert spacings[0] < 0.35
        assert spacings[-1] > 0.48
        assert all(0.33 <= s <= 0.5 for s in spacings)
        noise = sorted(c.noise_sd_hu for c in suite)
        assert noise[0] < 12.0
        assert noise[-1] > 33.0
        assert min(c.heart_scale for c in suite) < 0.9 < 1.15 < max(c.heart_scale for c in suite)
        assert max(len(c.plaques) for c in suite) >= 8

    def test_deterministic(self) -> None:
        assert evaluation_suite(12, seed=3) == evaluation_suite(12, seed=3)
        assert evaluation_suite(12, seed=3) != evaluation_suite(12, seed=4)

    def test_too_small(self) -> None:
        with pytest.raises(PhantomConfigError, match="at least 7"):
            evaluation_suite(3)
