"""A small text progress bar for the terminal (no dependency)."""

from __future__ import annotations

from typing import TextIO


class ProgressBar:
    """``Reading  23/64 [#########...............]`` redrawn in place on ``out``."""

    def __init__(self, label: str, out: TextIO, width: int = 30) -> None:
        self.label = label
        self.out = out
        self.width = width
        self.drawn = False

    def update(self, done: int, total: int) -> None:
        filled = self.width * done // total if total else self.width
        bar = "#" * filled + "." * (self.width - filled)
        self.out.write(f"\r{self.label} {done:>4}/{total:<4} [{bar}]")
        self.out.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.out.write("\n")
            self.out.flush()
