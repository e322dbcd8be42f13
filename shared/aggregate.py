"""Typed aggregates stored whole, one MongoDB document each (``id`` ↔ ``_id``).

A service's ``domain/`` declares its aggregates as :class:`Aggregate` models; its
``storage.py`` exposes one :func:`repository` per collection, so handlers get and put
models, never ``dict[str, Any]``. The document keeps the model's field names, so read APIs
and queries see the same shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Self, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer
from pydantic_core import to_jsonable_python

from shared.mongo import Document
from shared.unit_of_work import AggregateRepository, UnitOfWork

T = TypeVar("T")

StoredAsJson = Annotated[
    T, BeforeValidator(to_jsonable_python), PlainSerializer(to_jsonable_python)
]
"""A field whose values MongoDB cannot store as they are (``date``, enums, ``Decimal``):
``StoredAsJson[list[Finding]]`` holds them as their JSON values from the start, so what
the aggregate holds is what is stored (datetimes elsewhere stay BSON dates)."""


class Aggregate(BaseModel):
    """A document stored whole; ``id`` is its ``_id``."""

    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    id: str

    def to_doc(self) -> Document:
        return {"_id": self.id, **self.model_dump(exclude={"id"})}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Self:
        return cls.model_validate({**doc, "id": doc["_id"]})


G = TypeVar("G", bound=Aggregate)


def repository(uow: UnitOfWork, collection: str, model: type[G]) -> AggregateRepository[G]:
    """``model`` aggregates of ``collection``, through the unit of work's identity map."""
    return AggregateRepository(uow.documents(collection), model.to_doc, model.from_doc)
