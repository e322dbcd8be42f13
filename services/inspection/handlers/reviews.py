"""复议 / 诉讼 / 检察建议 outcomes of the units' acts (纠错); each re-judges the 被纠错率."""

from __future__ import annotations

from services.inspection import storage
from services.inspection.handlers.rates import RateJudge
from shared.clock import utc
from shared.contracts import ReviewDecided, parse_data
from shared.envelope import Envelope, EventRejected
from shared.mongo import Document
from shared.unit_of_work import UnitOfWork


class ReviewOutcomes(RateJudge):
    """Records each review outcome once; a conflicting outcome is refused."""

    async def on_review(self, event: Envelope, uow: UnitOfWork) -> None:
        data = parse_data(event, ReviewDecided)
        existing = await storage.get(uow, storage.REVIEWS, data.review_id)
        if existing is not None:
            if existing["case_id"] == data.case_id and existing["outcome"] == data.outcome:
                return  # the same outcome again (new event id): nothing changes
            raise EventRejected(
                f"review {data.review_id} already decided ({existing['outcome']} on case "
                f"{existing['case_id']}); conflicting outcome"
            )
        doc: Document = {
            "_id": data.review_id,
            "case_id": data.case_id,
            "unit": data.unit,
            "district": data.district,
            "channel": data.channel,
            "outcome": data.outcome,
            "corrected": data.outcome != "upheld",
            "decided_at": utc(data.decided_at),
            "body": data.body,
            "status": data.outcome,
            "recorded_at": uow.now(),
            "updated_at": uow.now(),
        }
        storage.put(uow, storage.REVIEWS, doc)
        await self._emit(uow, "review", "recorded", doc, {"at": uow.now(), "event_id": event.id})
        await self._judge_correction(uow, data.unit, data.district)
