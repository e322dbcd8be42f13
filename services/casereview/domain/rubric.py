"""The review rubric (评查评分标准) and scoring: pure, versioned, computed never typed.

A rubric is a data file (``data/rubric-<version>.yaml``). Scoring works in three steps:

1. :func:`propose` turns pre-check findings into proposed deductions (预填扣分), one per
   finding, on the rubric item that names the finding's code.
2. The reviewer decides each proposal (``confirm`` / ``override`` with other points /
   ``reject``; overriding or rejecting needs a comment) and may add deductions or veto items
   the machine cannot see (e.g. 事实不清).
3. :func:`score` computes the sheet: a confirmed veto item (否决项) → score 0 and the veto
   grade; otherwise each dimension keeps ``weight − deductions`` (never below 0), the total
   is their sum and the grade is the first threshold the total reaches.
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.casereview.domain.norms import Finding


class GradeThreshold(BaseModel):
    grade: str
    min_score: float = Field(ge=0)


class VetoItem(BaseModel):
    code: str
    text: str
    precheck: list[str] = Field(default_factory=list)


class Item(BaseModel):
    code: str
    text: str
    points: float = Field(gt=0, description="deducted per occurrence")
    precheck: list[str] = Field(default_factory=list)


class Dimension(BaseModel):
    code: str
    name: str
    weight: float = Field(gt=0)
    items: list[Item]


class Rubric(BaseModel):
    """One version of the scoring standard."""

    model_config = ConfigDict(frozen=True)

    version: str
    title: str
    effective_from: str | None = None
    sources: list[str] = Field(default_factory=list)
    veto_grade: str
    grades: list[GradeThreshold]
    rectification_grades: list[str]
    veto_items: list[VetoItem]
    dimensions: list[Dimension]

    @model_validator(mode="after")
    def _consistent(self) -> Rubric:
        mins = [g.min_score for g in self.grades]
        if mins != sorted(mins, reverse=True) or not mins or mins[-1] != 0:
            raise ValueError("grades must be ordered by min_score, highest first, ending at 0")
        if self.veto_grade not in {g.grade for g in self.grades}:
            raise ValueError(f"veto grade {self.veto_grade!r} is not a grade")
        codes = [v.code for v in self.veto_items] + [
            i.code for d in self.dimensions for i in d.items
        ]
        if len(codes) != len(set(codes)):
            raise ValueError("item codes must be unique")
        mapped = [c for v in self.veto_items for c in v.precheck] + [
            c for d in self.dimensions for i in d.items for c in i.precheck
        ]
        if len(mapped) != len(set(mapped)):
            raise ValueError("a pre-check code may pre-fill one item only")
        return self

    @property
    def max_score(self) -> float:
        return sum(d.weight for d in self.dimensions)

    @cached_property
    def items(self) -> dict[str, tuple[Dimension | None, Item | VetoItem]]:
        """Item code → (its dimension, or None for a veto item; the item)."""
        out: dict[str, tuple[Dimension | None, Item | VetoItem]] = {
            v.code: (None, v) for v in self.veto_items
        }
        for d in self.dimensions:
            for i in d.items:
                out[i.code] = (d, i)
        return out

    @cached_property
    def by_precheck(self) -> dict[str, str]:
        """Pre-check finding code → rubric item code."""
        out = {c: v.code for v in self.veto_items for c in v.precheck}
        out.update({c: i.code for d in self.dimensions for i in d.items for c in i.precheck})
        return out

    def grade_for(self, total: float) -> str:
        for threshold in self.grades:
            if total >= threshold.min_score:
                return threshold.grade
        return self.grades[-1].grade

    def needs_rectification(self, grade: str) -> bool:
        return grade in self.rectification_grades


# ---------------------------------------------------------------- loading


def _default_dir() -> Path:
    return Path(str(resources.files("services.casereview").joinpath("data")))


@lru_cache(maxsize=8)
def load_rubrics(directory: str | None = None) -> dict[str, Rubric]:
    """Every ``rubric-*.yaml`` in the folder, by version."""
    folder = Path(directory) if directory else _default_dir()
    out: dict[str, Rubric] = {}
    for path in sorted(folder.glob("rubric-*.yaml")):
        rubric = Rubric.model_validate(yaml.safe_load(path.read_text("utf-8")))
        out[rubric.version] = rubric
    if not out:
        raise ValueError(f"no rubric-*.yaml in {folder}")
    return out


def version_key(version: str) -> tuple[int | str, ...]:
    return tuple(int(p) if p.isdigit() else p for p in version.split("."))


def current_rubric(rubrics: dict[str, Rubric], version: str | None = None) -> Rubric:
    if version is not None:
        if version not in rubrics:
            raise ValueError(f"unknown rubric version {version!r}")
        return rubrics[version]
    return rubrics[max(rubrics, key=version_key)]


# ---------------------------------------------------------------- proposals and decisions


class Proposal(BaseModel):
    """A deduction (or veto) the pre-check proposes; the reviewer decides it."""

    id: str
    item: str
    kind: Literal["veto", "deduction"]
    points: float
    finding_code: str
    message: str
    evidence: dict[str, object] = Field(default_factory=dict)


def propose(rubric: Rubric, findings: list[Finding]) -> list[Proposal]:
    """预填扣分: one proposal per finding whose code a rubric item names."""
    out: list[Proposal] = []
    for finding in findings:
        code = rubric.by_precheck.get(finding.code)
        if code is None:
            continue
        dimension, item = rubric.items[code]
        out.append(
            Proposal(
                id=f"P{len(out) + 1}",
                item=code,
                kind="veto" if dimension is None else "deduction",
                points=0.0 if dimension is None else item.points,  # type: ignore[union-attr]
                finding_code=finding.code,
                message=finding.message,
                evidence=finding.evidence,
            )
        )
    return out


class Decision(BaseModel):
    """The reviewer's word on one proposal."""

    proposal: str = Field(min_length=1, max_length=20)
    action: Literal["confirm", "override", "reject"]
    points: float | None = Field(default=None, ge=0, description="override only")
    comment: str = Field(default="", max_length=2000)


class Extra(BaseModel):
    """A deduction or veto the reviewer adds (what no machine can see)."""

    item: str = Field(min_length=1, max_length=20)
    points: float | None = Field(default=None, ge=0, description="default: the item's points")
    comment: str = Field(min_length=1, max_length=2000)


class ReviewError(ValueError):
    """The reviewer's submission cannot be scored; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class Line(BaseModel):
    item: str
    text: str
    dimension: str | None
    kind: Literal["veto", "deduction"]
    points: float
    origin: Literal["precheck", "reviewer"]
    action: Literal["confirm", "override", "add"]
    finding_code: str | None = None
    comment: str = ""


class DimensionScore(BaseModel):
    code: str
    name: str
    weight: float
    deducted: float
    score: float


class ScoreSheet(BaseModel):
    """The computed result: lines, per-dimension scores, vetoes, total and grade."""

    rubric_version: str
    lines: list[Line]
    rejected: list[dict[str, str]] = Field(default_factory=list)
    dimensions: list[DimensionScore]
    vetoes: list[str]
    total: float
    max_score: float
    grade: str


def decide(
    rubric: Rubric, proposals: list[Proposal], decisions: list[Decision], extras: list[Extra]
) -> tuple[list[Line], list[dict[str, str]]]:
    """Apply the reviewer's decisions; every proposal needs exactly one decision."""
    problems: list[str] = []
    by_id = {p.id: p for p in proposals}
    seen: dict[str, Decision] = {}
    for given in decisions:
        if given.proposal not in by_id:
            problems.append(f"{given.proposal}: no such proposal")
        elif given.proposal in seen:
            problems.append(f"{given.proposal}: decided twice")
        else:
            seen[given.proposal] = given
    undecided = [p.id for p in proposals if p.id not in seen]
    if undecided:
        problems.append(f"undecided proposals: {', '.join(undecided)}")
    lines: list[Line] = []
    rejected: list[dict[str, str]] = []
    for p in proposals:
        d = seen.get(p.id)
        if d is None:
            continue
        dimension, item = rubric.items[p.item]
        if d.action in ("override", "reject") and not d.comment.strip():
            problems.append(f"{p.id}: {d.action} needs a comment")
            continue
        if d.action == "reject":
            rejected.append({"proposal": p.id, "item": p.item, "comment": d.comment})
            continue
        points = p.points
        if d.action == "override":
            if p.kind == "veto":
                problems.append(f"{p.id}: a veto item is confirmed or rejected, not overridden")
                continue
            if d.points is None:
                problems.append(f"{p.id}: override needs points")
                continue
            points = d.points
        lines.append(
            Line(
                item=p.item,
                text=item.text,
                dimension=dimension.code if dimension else None,
                kind=p.kind,
                points=points,
                origin="precheck",
                action=d.action,
                finding_code=p.finding_code,
                comment=d.comment,
            )
        )
    for n, extra in enumerate(extras, start=1):
        found = rubric.items.get(extra.item)
        if found is None:
            problems.append(f"extra {n}: unknown rubric item {extra.item!r}")
            continue
        dimension, item = found
        lines.append(
            Line(
                item=extra.item,
                text=item.text,
                dimension=dimension.code if dimension else None,
                kind="veto" if dimension is None else "deduction",
                points=0.0
                if dimension is None
                else (extra.points if extra.points is not None else item.points),  # type: ignore[union-attr]
                origin="reviewer",
                action="add",
                comment=extra.comment,
            )
        )
    if problems:
        raise ReviewError(problems)
    return lines, rejected


def score(
    rubric: Rubric, lines: list[Line], rejected: list[dict[str, str]] | None = None
) -> ScoreSheet:
    """The sheet for these confirmed lines: veto wins; else weights minus capped deductions."""
    vetoes = sorted({line.item for line in lines if line.kind == "veto"})
    dims: list[DimensionScore] = []
    for d in rubric.dimensions:
        lost = sum(line.points for line in lines if line.dimension == d.code)
        deducted = min(d.weight, lost)
        dims.append(
            DimensionScore(
                code=d.code,
                name=d.name,
                weight=d.weight,
                deducted=deducted,
                score=d.weight - deducted,
            )
        )
    if vetoes:
        total, grade = 0.0, rubric.veto_grade
    else:
        total = round(sum(d.score for d in dims), 2)
        grade = rubric.grade_for(total)
    return ScoreSheet(
        rubric_version=rubric.version,
        lines=lines,
        rejected=rejected or [],
        dimensions=dims,
        vetoes=vetoes,
        total=total,
        max_score=rubric.max_score,
        grade=grade,
    )


def review_sheet(
    rubric: Rubric, proposals: list[Proposal], decisions: list[Decision], extras: list[Extra]
) -> ScoreSheet:
    lines, rejected = decide(rubric, proposals, decisions, extras)
    return score(rubric, lines, rejected)


# ---------------------------------------------------------------- rectification

RectificationKind = Literal["failed", "deductions"]
"""``failed``: a grade that needs rectification (不合格), escalated with a REVIEW_FAILED lead;
``deductions``: a passing file the review still found problems in."""


def rectification_kind(rubric: Rubric, sheet: ScoreSheet) -> RectificationKind | None:
    """Which rectification a scored file gets (None: nothing to rectify).

    Seed 002_8cc9de9d925df07c.txt (瓯海区2022年度行政执法监督工作计划): “各行政执法机关对评查
    反馈函反映的问题予以整改落实，提交书面整改报告” — every file the review deducted points from
    (or vetoed) is rectified with the listed problems; failing grades stay the escalated kind.
    """
    if rubric.needs_rectification(sheet.grade):
        return "failed"
    if sheet.vetoes or any(line.points > 0 or line.kind == "veto" for line in sheet.lines):
        return "deductions"
    return None
