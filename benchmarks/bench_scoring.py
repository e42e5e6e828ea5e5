"""Benchmark: Agatston + volume + mass over a 512 x 512 x 64 volume, against a bare baseline.

The baseline, measured in the same run on the same volume, is what any Agatston implementation
must do at the very least: threshold every slice and label its 2-D connected components with
``scipy.ndimage.label``, nothing else. The figure that matters is the ratio (aim: <= 1.5x).
Peak memory of the engine (tracemalloc, beyond the volume itself) is printed as a multiple of the
volume's int16 size.

Run: ``.venv/bin/python benchmarks/bench_scoring.py [--repeats N]``
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from scoring import (
    AcquisitionInfo,
    CTVolume,
    ScoringParameters,
    axial_geometry,
    find_candidates,
    score_candidates,
)


def chest_like_volume(seed: int = 0, shape: tuple[int, int, int] = (64, 512, 512)) -> CTVolume:
    """A chest-like test volume: body, lungs, a spine, ribs, noise and some calcified spots."""
    rng = np.random.default_rng(seed)
    z, y, x = shape
    yy, xx = np.mgrid[0:y, 0:x]
    plane = np.full((y, x), -1000.0, dtype=np.float32)
    plane[((yy - y / 2) / (0.42 * y)) ** 2 + ((xx - x / 2) / (0.47 * x)) ** 2 <= 1] = 40
    for cx in (0.3 * x, 0.7 * x):
        plane[((yy - 0.5 * y) / (0.3 * y)) ** 2 + ((xx - cx) / (0.15 * x)) ** 2 <= 1] = -850
    plane[((yy - 0.8 * y) / 22) ** 2 + ((xx - x / 2) / 22) ** 2 <= 1] = 450  # vertebra
    hu = np.empty(shape, dtype=np.int16)
    for k in range(z):
        slice_ = plane.copy()
        for angle in np.linspace(0.4, 2.7, 6):  # rib cross-sections
            cy = y / 2 + 0.4 * y * np.sin(angle) * (1 if k % 2 else -1)
            cx = x / 2 + 0.45 * x * np.cos(angle)
            slice_[(yy - cy) ** 2 + (xx - cx) ** 2 <= 36] = 600
        for _ in range(3):  # calcified spots
            cy, cx = rng.uniform(0.35 * y, 0.6 * y), rng.uniform(0.4 * x, 0.6 * x)
            slice_[(yy - cy) ** 2 + (xx - cx) ** 2 <= rng.uniform(2, 20)] = rng.uniform(150, 900)
        slice_ += rng.normal(0, 20, size=(y, x)).astype(np.float32)
        hu[k] = np.clip(slice_, -1024, 3000).astype(np.int16)
    geometry = axial_geometry(z, (0.4, 0.4), 3.0)
    return CTVolume(hu, geometry, AcquisitionInfo(kvp=120.0))


def phantom_volume(seed: int = 3, n_slices: int = 64) -> CTVolume:
    """The anthropomorphic chest phantom (heavy distractors), stacked to ``n_slices`` slices."""
    from phantom.chest import ChestPhantomConfig, chest_phantom

    study = chest_phantom(ChestPhantomConfig.random(seed, heavy_distractors=True, matrix_size=512))
    hu = study.volume.hu
    reps = -(-n_slices // hu.shape[0])
    stacked = np.ascontiguousarray(np.concatenate([hu] * reps)[:n_slices])
    spacing = study.volume.geometry.pixel_spacing_mm
    geometry = axial_geometry(n_slices, spacing, study.volume.geometry.increment_mm)
    return CTVolume(stacked, geometry, study.volume.acquisition)


def baseline(hu: npt.NDArray[np.int16], threshold: int = 130) -> int:
    structure = ndimage.generate_binary_structure(2, 2)
    total = 0
    for plane in hu:
        _, n = ndimage.label(plane >= threshold, structure=structure)
        total += n
    return total


def engine(volume: CTVolume, params: ScoringParameters) -> float:
    return score_candidates(find_candidates(volume, params)).agatston


def timed(fn: object, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--source",
        choices=("phantom", "synthetic"),
        default="phantom",
        help="phantom: the anthropomorphic chest phantom; synthetic: a simple chest-like volume",
    )
    args = parser.parse_args()
    volume = phantom_volume() if args.source == "phantom" else chest_like_volume()
    params = ScoringParameters()
    engine(volume, params)  # warm caches and imports
    base_times: list[float] = []
    engine_times: list[float] = []
    find_times: list[float] = []
    for _ in range(args.repeats):  # interleave so machine noise hits both alike
        base_times += timed(lambda: baseline(volume.hu), 1)
        engine_times += timed(lambda: engine(volume, params), 1)
        find_times += timed(lambda: find_candidates(volume, params), 1)
    base = statistics.median(base_times)
    full = statistics.median(engine_times)
    find = statistics.median(find_times)
    result = score_candidates(find_candidates(volume, params))
    print(f"volume: {volume.shape} int16, {result.lesion_count} candidates scored")
    print(
        f"baseline (threshold + per-slice ndimage.label): {base * 1000:8.1f} ms "
        f"(median of {args.repeats})"
    )
    print(f"engine (Agatston + volume + mass + lesions):    {full * 1000:8.1f} ms")
    print(f"  of which find_candidates alone:               {find * 1000:8.1f} ms")
    print(f"ratio engine / baseline: {full / base:.2f}x (aim <= 1.5x)")

    tracemalloc.start()
    find_candidates(volume, params)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    nbytes = volume.hu.nbytes
    print(
        f"peak memory of scoring beyond the volume: {peak / 2**20:.1f} MiB = "
        f"{peak / nbytes:.2f}x the int16 volume ({nbytes / 2**20:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
