"""What the notify routes depend on, besides the service and the caller (``shared.api``):
the workflow, the delivery worker and the unit directory the service was given; the filters
of the notice lists."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from services.notify.delivery import DeliveryWorker
from services.notify.domain.directory import UnitDirectory
from services.notify.handlers import NotifyWorkflow
from services.notify.reads import NoticeFilters
from shared.api import component

WorkflowDep = Annotated[NotifyWorkflow, Depends(component(NotifyWorkflow))]
WorkerDep = Annotated[DeliveryWorker, Depends(component(DeliveryWorker))]
DirectoryDep = Annotated[UnitDirectory, Depends(component(UnitDirectory))]
NoticeFiltersDep = Annotated[NoticeFilters, Depends()]
