"""The services' garbage-collector settings (``JIANDU_GC_YOUNG_THRESHOLD``)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from shared.entrypoint import tune_gc
from shared.settings import ServiceSettings


@pytest.fixture
def gc_restored() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_what_exists_at_start_is_frozen_and_young_passes_are_rarer(gc_restored: None) -> None:
    gc.unfreeze()
    _, middle, old = gc.get_threshold()
    tune_gc(ServiceSettings(gc_young_threshold=12_345))
    assert gc.get_freeze_count() > 1000  # the imported modules' objects, at least
    assert gc.get_threshold() == (12_345, middle, old)


def test_zero_leaves_cpython_as_it_is(gc_restored: None) -> None:
    gc.unfreeze()
    before = gc.get_threshold()
    tune_gc(ServiceSettings(gc_young_threshold=0))
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before
