"""What the penalty routes depend on: the workflow and the catalogue the service was given
(``Service.provide`` in ``main``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from services.penalty.domain.catalogue import Catalogue
from services.penalty.handlers import PenaltyWorkflow
from shared.api import component

WorkflowDep = Annotated[PenaltyWorkflow, Depends(component(PenaltyWorkflow))]
"""The service's :class:`PenaltyWorkflow`: every command goes through it."""
CatalogueDep = Annotated[Catalogue, Depends(component(Catalogue))]
"""The versioned catalogue (处罚裁量目录) the top-tier judgement uses."""
