"""The reference data one casereview instance works with, loaded once at start.

The pre-check thresholds (自动预检, from the settings), the scoring rubrics (评查标准: every
version, since a review is scored by the rubric it was opened with), the reviewer directory
(评查人员名录) and the city's district and unit names (for reports). Handlers and read routes
share this one copy: the service gives it to its routes with ``Service.provide``.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.casereview.domain.directory import Directory, load_directory
from services.casereview.domain.precheck import PrecheckPolicy
from services.casereview.domain.rubric import Rubric, current_rubric, load_rubrics
from services.casereview.settings import CasereviewSettings
from shared.city import load_city


@dataclass(frozen=True)
class ReferenceData:
    settings: CasereviewSettings
    policy: PrecheckPolicy
    rubrics: dict[str, Rubric]
    rubric: Rubric
    """The current rubric: new reviews are opened with it."""
    directory: Directory
    place_names: dict[str, str]
    """District code or unit id → its name."""

    @classmethod
    def load(cls, settings: CasereviewSettings) -> ReferenceData:
        rubrics = load_rubrics(settings.rubric_dir)
        city = load_city()
        names = {district.code: district.name for district in city.districts}
        names.update({unit.id: unit.name for unit in city.all_units()})
        return cls(
            settings=settings,
            policy=PrecheckPolicy(
                decision_limit_days=settings.decision_limit_days,
                service_limit_days=settings.service_limit_days,
                min_officers=settings.min_officers,
                large_fine_thresholds=dict(settings.large_fine_thresholds),
                hearing_decision_kinds=frozenset(settings.hearing_decision_kinds),
            ),
            rubrics=rubrics,
            rubric=current_rubric(rubrics, settings.rubric_version),
            directory=load_directory(settings.reviewers_path),
            place_names=names,
        )

    def rubric_of(self, version: str) -> Rubric:
        """The rubric a review was opened with (the current one if that version is gone)."""
        return self.rubrics.get(version, self.rubric)

    def item_texts(self) -> dict[str, str]:
        """Every rubric item's text by code, the current version's wording first."""
        texts = {code: item.text for code, (_, item) in self.rubric.items.items()}
        for rubric in self.rubrics.values():
            for code, (_, item) in rubric.items.items():
                texts.setdefault(code, item.text)
        return texts
