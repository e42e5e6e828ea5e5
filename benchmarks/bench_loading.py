"""Benchmark of series loading: throughput against reading the bytes, and peak memory.

For a synthetic 512 x 512 x 64 CT series written with :func:`dicom_io.write_series`:

- loading MB/s of :func:`dicom_io.load_series` against only reading the same files' bytes
  (baseline measured in the same run), for Explicit VR Little Endian and JPEG 2000 Lossless;
- peak resident memory of ``load_series`` measured in a fresh subprocess (``VmHWM``), compared
  with the int16 volume's size, above the interpreter with its imports (also measured).

Run: ``.venv/bin/python benchmarks/bench_loading.py`` (about half a minute).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless

from dicom_io import load_series, write_series
from scoring.volume import AcquisitionInfo, CTVolume, axial_geometry

SHAPE = (64, 512, 512)
REPEATS = 3

_MEMORY_PROBE = """
import json, sys
def rss_mb():
    # VmHWM (peak resident set) of this process image; ru_maxrss would carry the parent's peak
    # across fork + exec.
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmHWM in /proc/self/status")
mode = sys.argv[1]
if mode == "bare":
    print(json.dumps({"rss_mb": rss_mb()}))
    raise SystemExit
from dicom_io import load_series
import pydicom.pixels.decoders.base, openjpeg, numpy
after_imports = rss_mb()
if mode == "imports":
    print(json.dumps({"rss_mb": after_imports}))
    raise SystemExit
loaded = load_series(sys.argv[2])
print(json.dumps({"rss_mb": rss_mb(), "imports_mb": after_imports,
                  "volume_mb": loaded.volume.hu.nbytes / 2**20}))
"""


def _phantom() -> CTVolume:
    """A body-like ellipse of soft tissue with noise, air outside, a few calcium spots."""
    rng = np.random.default_rng(0)
    z, y, x = SHAPE
    yy, xx = np.mgrid[0:y, 0:x]
    body = ((yy - y / 2) / (0.38 * y)) ** 2 + ((xx - x / 2) / (0.45 * x)) ** 2 <= 1.0
    hu = np.full(SHAPE, -1000, dtype=np.int16)
    for k in range(z):
        slice_hu = np.where(body, 40, -1000) + rng.normal(0, 15, size=(y, x))
        slice_hu[250:256, 260 + k % 5 : 266 + k % 5] = 450
        hu[k] = np.clip(np.rint(slice_hu), -1024, 3071).astype(np.int16)
    return CTVolume(
        hu=hu,
        geometry=axial_geometry(z, (0.68, 0.68), increment_mm=3.0),
        acquisition=AcquisitionInfo(kvp=120.0, reconstruction_kernel="Qr36"),
    )


def _best_time(action: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    return best


def _read_bytes(folder: Path) -> int:
    return sum(len(path.read_bytes()) for path in sorted(folder.iterdir()))


def _probe(*arguments: str) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, *arguments],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(output.strip().splitlines()[-1]))


def main() -> None:
    volume = _phantom()
    volume_mb = volume.hu.nbytes / 2**20
    print(f"series: {SHAPE[0]} slices of {SHAPE[1]} x {SHAPE[2]}, int16 volume {volume_mb:.1f} MB")
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        folders: dict[str, Path] = {}
        for name, syntax in (
            ("uncompressed", ExplicitVRLittleEndian),
            ("JPEG 2000", JPEG2000Lossless),
        ):
            folders[name] = root / name.replace(" ", "")
            start = time.perf_counter()
            write_series(volume, folders[name], transfer_syntax=syntax)
            print(f"wrote {name} series in {time.perf_counter() - start:.1f} s")

        print("\nloading throughput (best of 3, files in the page cache)")
        print(
            f"{'syntax':<14}{'file MB':>9}{'read MB/s':>11}{'load MB/s':>11}"
            f"{'load/read':>11}{'volume MB/s':>13}"
        )
        for name, folder in folders.items():
            file_mb = _read_bytes(folder) / 2**20  # also warms the page cache
            read_s = _best_time(lambda folder=folder: _read_bytes(folder))
            load_s = _best_time(lambda folder=folder: load_series(folder))
            loaded = load_series(folder)
            assert np.array_equal(loaded.volume.hu, volume.hu), "round trip failed"
            print(
                f"{name:<14}{file_mb:>9.1f}{file_mb / read_s:>11.0f}{file_mb / load_s:>11.0f}"
                f"{read_s / load_s:>11.3f}{volume_mb / load_s:>13.0f}"
            )

        print("\npeak memory of load_series in a fresh process (VmHWM)")
        bare = _probe("bare")["rss_mb"]
        imports = _probe("imports")["rss_mb"]
        print(f"bare interpreter {bare:.0f} MB; with imports {imports:.0f} MB")
        for name, folder in folders.items():
            probe = _probe("load", str(folder))
            above = probe["rss_mb"] - probe["imports_mb"]
            print(
                f"{name:<14} peak {probe['rss_mb']:.0f} MB = imports + {above:.0f} MB "
                f"= imports + {above / volume_mb:.2f} x the int16 volume (target < 4)"
            )


if __name__ == "__main__":
    main()
