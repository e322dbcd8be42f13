"""HTTP API of the notify service: ``/v1/notices``, ``/v1/units/{unit}/inbox``, ``/v1/letters``.

A unit's inbox (站内信), one notice with its rendered text, 签收, delivery status per
channel, resend (:mod:`.notices`); supervision letters and their replies (:mod:`.letters`).
Lists are paginated (``limit``, ``offset``) and filterable; bad input answers 4xx with the
reason, never 500.

Every route needs a bearer token (``shared.identity``): a unit sees its own inbox and notices,
a district bureau its district's (another's answers 404). Routes parse, call and shape: the
reads are :mod:`.reads`, the commands the workflow's (:mod:`services.notify.handlers`).
"""

from __future__ import annotations

from fastapi import APIRouter

from services.notify.api import letters, notices

router = APIRouter()
for concern in (notices, letters):
    router.include_router(concern.router)
