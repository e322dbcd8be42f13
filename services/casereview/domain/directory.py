"""The reviewer directory (评查人员名录): a versioned data file of reviewers across districts."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, model_validator

from services.casereview.domain.sampling import Reviewer


class Directory(BaseModel):
    version: str
    reviewers: list[Reviewer]

    @model_validator(mode="after")
    def _unique(self) -> Directory:
        ids = [r.id for r in self.reviewers]
        if len(ids) != len(set(ids)):
            raise ValueError("reviewer ids must be unique")
        return self

    def get(self, reviewer_id: str) -> Reviewer | None:
        return next((r for r in self.reviewers if r.id == reviewer_id), None)

    def active(self) -> list[Reviewer]:
        return [r for r in self.reviewers if r.active]


@lru_cache(maxsize=4)
def load_directory(path: str | None = None) -> Directory:
    file = (
        Path(path)
        if path
        else Path(str(resources.files("services.casereview").joinpath("data/reviewers.yaml")))
    )
    return Directory.model_validate(yaml.safe_load(file.read_text("utf-8")))
