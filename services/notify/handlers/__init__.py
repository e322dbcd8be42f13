"""Event, timer and command handlers of the notify service, by concern.

* :mod:`.issuing`: ``jiandu.notify.requested`` → one notice, numbered, rendered, with its
  pending deliveries, timers and ``created`` event, in one transaction;
* :mod:`.deliveries`: outcomes the delivery worker (:mod:`services.notify.delivery`) reports
  after sending with no transaction open, a claimed batch's recorded in one transaction;
  resends;
* :mod:`.acknowledgement`: 签收, and the escalation (通报) when its deadline passes;
* :mod:`.letters`: supervision letters, their 书面回复 and the reply deadline.

:class:`NotifyWorkflow` is all of them over one settings, source and unit directory.
"""

from __future__ import annotations

from services.notify.handlers.acknowledgement import Acknowledgements
from services.notify.handlers.deliveries import DeliveryOutcomes
from services.notify.handlers.issuing import (
    ESCALATION_DUE,
    LETTER_REPLY_DUE,
    notice_of_request,
    wall_now,
)
from services.notify.handlers.letters import LetterReplies

__all__ = [
    "ESCALATION_DUE",
    "LETTER_REPLY_DUE",
    "NotifyWorkflow",
    "notice_of_request",
    "wall_now",
]


class NotifyWorkflow(DeliveryOutcomes, Acknowledgements, LetterReplies):
    """Issuing, delivering (outcomes), acknowledging and escalating notices; letters' replies."""
