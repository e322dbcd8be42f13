"""The casereview service on the real embedded Kafka and MongoDB, with a ManualClock:
200 closed cases → pre-check → campaign → scoring → rectification, redelivery, escalation.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from services.casereview.domain.precheck import PrecheckPolicy, run_prechecks
from services.casereview.domain.rubric import current_rubric, load_rubrics
from services.casereview.main import build
from services.casereview.settings import CasereviewSettings
from shared.city import supervising_unit
from shared.clock import ManualClock
from shared.contracts import OFFICER_CHANGED_TYPE, LeadKind, NoticeKind, SupervisionLead
from shared.envelope import Envelope
from shared.identity import Role
from shared.outbox import outbox_events
from shared.service import Service
from shared.topics import (
    CASEREVIEW_EVENTS,
    INGEST_ENFORCEMENT,
    INSPECTION_EVENTS,
    NOTIFY_REQUESTS,
    SUPERVISION_LEADS,
)
from tests.casereview.cases import case, clean_file, closed_event, mutate, without_doc
from tests.helpers import KafkaTap, Publisher, api_client, bearer, eventually

pytestmark = pytest.mark.integration

UNITS = [f"{d}-{k}" for d in ("310101", "310106", "310115", "310104") for k in ("cgzf", "scjg")]
UNITS += ["310106-st01-zhzf", "310115-st02-zhzf"]
NOW = dt.datetime(2025, 5, 6, 2, 0, tzinfo=dt.UTC)
RUBRIC = current_rubric(load_rubrics())
FAIL = RUBRIC.veto_grade


def two_hundred_files() -> list[dict[str, Any]]:
    """20 files per unit over April 2025, with defects at fixed strides."""
    files = []
    for i in range(200):
        unit = UNITS[i % len(UNITS)]
        data = clean_file(case_id=f"{unit}-2025-{i:06d}", unit=unit)
        data["dates"]["closed"] = f"2025-04-{1 + i % 28:02d}"
        if i % 10 == 3:
            data["officers"] = data["officers"][:1]  # veto: 执法人员少于2人
        if i % 7 == 0:
            data["publicity"] = False
        if i % 5 == 0:
            data = without_doc(data, "结案报告")
        if i % 11 == 0:
            data = mutate(data, discretion_baseline=None)
        files.append(data)
    return files


def of_type(events: list[Envelope], verb: str) -> list[Envelope]:
    return [e for e in events if e.type == f"jiandu.casereview.case.{verb}"]


async def outbox_empty(svc: Service) -> bool:
    return await svc.relay.pending() == 0  # type: ignore[union-attr]


async def test_closed_cases_sampled_scored_and_failed_file_rectified_exactly_once(
    settings_for: Callable[..., CasereviewSettings], publisher: Publisher, tap: Any
) -> None:
    settings = settings_for(CasereviewSettings)
    prefix = settings.topic_prefix
    events: KafkaTap = await tap(prefix + CASEREVIEW_EVENTS.name)
    notices: KafkaTap = await tap(prefix + NOTIFY_REQUESTS.name)
    leads: KafkaTap = await tap(prefix + SUPERVISION_LEADS.name)
    clock = ManualClock(NOW)
    files = two_hundred_files()
    by_id = {f["case_id"]: f for f in files}
    first_events = {f["case_id"]: closed_event(f) for f in files}

    async with build(settings, clock=clock).running() as svc, api_client(svc) as http:
        topic = svc.topic(INGEST_ENFORCEMENT)
        # a penalty decision on the same topic is not ours: skipped, never stored
        await publisher.event(
            topic,
            Envelope(
                type="gov.enforcement.penalty.decided",
                source="/tests",
                district="310106",
                partitionkey="P-1",
                data={"case_id": "P-1"},
            ),
        )
        for event in first_events.values():
            await publisher.event(topic, event)
        await events.wait_for_events(lambda es: len(of_type(es, "registered")) >= 200, 60)
        assert await svc.db["cases"].count_documents({}) == 200
        assert await svc.db["quarantine"].count_documents({}) == 0

        # -- pre-check: stored findings are what the rules say about each file
        with_defects = {cid for cid, f in by_id.items() if run_prechecks(case(f), PrecheckPolicy())}
        found = {e.partitionkey for e in of_type(events.events(), "defects_found")}
        assert found == with_defects
        r = await http.get("/v1/casereview/cases", params={"finding": "OFFICERS_TOO_FEW"})
        assert r.status_code == 200
        assert r.json()["total"] == sum(1 for i in range(200) if i % 10 == 3)
        detail = (await http.get(f"/v1/casereview/cases/{files[3]['case_id']}")).json()
        too_few = next(f for f in detail["findings"] if f["code"] == "OFFICERS_TOO_FEW")
        assert too_few["evidence"]["officers"] == ["ZF-001"] and "第四十二条" in too_few["source"]

        # -- campaign: 2 per unit from April, reviewers from the directory
        spec = {
            "name": "2025年4月案卷评查",
            "period_from": "2025-04-01",
            "period_to": "2025-04-30",
            "k_per_unit": 2,
            "seed": "jiandu-2025-04",
        }
        r = await http.post("/v1/casereview/campaigns", json=spec)
        assert r.status_code == 201, r.text
        campaign = r.json()
        assert len(campaign["sample"]) == 2 * len(UNITS)
        assert Counter(by_id[c]["unit"] for c in campaign["sample"]) == {u: 2 for u in UNITS}
        reviewer_unit = {r["id"]: r["unit"] for r in campaign["reviewers"]}
        assert all(reviewer_unit[r] != by_id[c]["unit"] for c, r in campaign["assignments"].items())
        verify = (await http.get(f"/v1/casereview/campaigns/{campaign['id']}/verify")).json()
        assert verify["sample_matches"] and verify["assignments_match"]
        assert verify["population_hash_matches"]
        assert (await http.post("/v1/casereview/campaigns", json=spec)).status_code == 409
        bad = await http.post("/v1/casereview/campaigns", json={**spec, "percent": 10})
        assert bad.status_code == 422

        # -- scoring: confirm every proposal; the first two reviewers also find 事实不清
        reviews = (
            await http.get(
                "/v1/casereview/reviews", params={"campaign_id": campaign["id"], "limit": 100}
            )
        ).json()["items"]
        assert len(reviews) == len(campaign["sample"])
        deducted: list[str] = []  # reviews with any deduction: each gets a rectification
        for n, review in enumerate(reviews):
            body: dict[str, Any] = {
                "reviewer_id": review["reviewer_id"],
                "decisions": [
                    {"proposal": p["id"], "action": "confirm"} for p in review["proposals"]
                ],
                "extras": [{"item": "V3", "comment": "证据不足"}] if n < 2 else [],
            }
            if n == 0:
                wrong = await http.post(
                    f"/v1/casereview/reviews/{review['id']}/score",
                    json={**body, "reviewer_id": "R31010101X"},
                )
                assert wrong.status_code == 403
                if review["proposals"]:
                    partial = await http.post(
                        f"/v1/casereview/reviews/{review['id']}/score",
                        json={**body, "decisions": []},
                    )
                    assert partial.status_code == 422
            r = await http.post(f"/v1/casereview/reviews/{review['id']}/score", json=body)
            assert r.status_code == 200, r.text
            scored = r.json()
            if scored["sheet"]["lines"]:
                deducted.append(scored["id"])
            vetoed = n < 2 or any(p["kind"] == "veto" for p in review["proposals"])
            assert (scored["grade"] == FAIL) == vetoed
            if not vetoed:
                lost = sum(p["points"] for p in review["proposals"])
                assert scored["score"] == RUBRIC.max_score - lost
        again = await http.post(f"/v1/casereview/reviews/{reviews[0]['id']}/score", json=body)
        assert again.status_code == 409

        failed = [
            r
            for r in (await http.get("/v1/casereview/reviews", params={"grade": FAIL})).json()[
                "items"
            ]
        ]
        assert len(failed) >= 2 and len(deducted) > len(failed)
        assert {r["id"] for r in failed} <= set(deducted)
        rects = (await http.get("/v1/casereview/rectifications", params={"limit": 100})).json()
        assert rects["total"] == len(deducted)  # seed 002: every problem named is rectified
        kinds = Counter(r["kind"] for r in rects["items"])
        assert kinds == {"failed": len(failed), "deductions": len(deducted) - len(failed)}

        # -- redelivery of a failed case's event: same id, new id, then a revised file
        target = failed[0]["case_id"]
        await publisher.event(topic, first_events[target])
        await publisher.event(topic, closed_event(by_id[target], event_id="resent-1"))
        revised = mutate(by_id[target], matter="占道经营（更正）")
        await publisher.event(topic, closed_event(revised, event_id="resent-2"))

        async def revision_noted() -> bool:
            doc = await svc.db["cases"].find_one({"_id": target})
            return bool(doc and doc.get("ignored_revisions"))

        await eventually(revision_noted)
        await eventually(lambda: outbox_empty(svc))
        rect_id = f"rect:{failed[0]['id']}"
        key = f"casereview:rectification:{rect_id}:1"
        assert len(await outbox_events(svc.db, key=key.encode())) == 1
        await notices.wait_for_events(
            lambda es: (
                sum(1 for e in es if e.data["kind"] == NoticeKind.RECTIFICATION) >= len(deducted)
            )
        )
        orders = [e for e in notices.events() if e.data["kind"] == NoticeKind.RECTIFICATION]
        assert len(orders) == len(deducted)
        assert all("书面整改报告" in e.data["summary"] for e in orders)
        assert [e.data["idempotency_key"] for e in orders].count(key) == 1
        order = next(e for e in orders if e.data["idempotency_key"] == key)
        assert order.data["recipient_unit"] == by_id[target]["unit"]
        assert order.data["deadline"] is not None and order.data["subject_id"] == rect_id
        await leads.wait_for_events(lambda es: len(es) >= len(failed))
        assert {e.id for e in leads.events()} == {
            SupervisionLead.make_id(LeadKind.REVIEW_FAILED, r["case_id"], r["id"]) for r in failed
        }

        # -- the unit answers one order; the supervisor accepts it
        unit = by_id[target]["unit"]
        answer = {
            "unit": unit,
            "measures": "已补正文书并组织执法人员培训",
            "documents": ["整改报告"],
        }
        r = await http.post(
            f"/v1/casereview/rectifications/{rect_id}/answer", json={**answer, "unit": "310101-sfj"}
        )
        assert r.status_code == 403
        r = await http.post(f"/v1/casereview/rectifications/{rect_id}/answer", json=answer)
        assert r.status_code == 200 and r.json()["status"] == "answered"
        r = await http.post(
            f"/v1/casereview/rectifications/{rect_id}/close",
            json={"by": f"{unit[:6]}-sfj", "accepted": True},  # its district bureau
        )
        assert r.status_code == 200 and r.json()["status"] == "closed"

        # -- the others are overdue after the deadline: escalated once each
        deadline = dt.datetime.fromisoformat(order.data["deadline"])
        clock.set(deadline - dt.timedelta(seconds=1))
        assert await svc.timers.tick() == 0  # type: ignore[union-attr]
        clock.set(deadline + dt.timedelta(seconds=1))
        assert await svc.timers.tick() == len(deducted) - 1  # type: ignore[union-attr]
        assert await svc.timers.tick() == 0  # type: ignore[union-attr]
        await notices.wait_for_events(
            lambda es: (
                sum(1 for e in es if e.data["kind"] == NoticeKind.ESCALATION) >= len(deducted) - 1
            )
        )
        escalations = [e for e in notices.events() if e.data["kind"] == NoticeKind.ESCALATION]
        assert sorted(e.data["subject_id"] for e in escalations) == sorted(
            f"rect:{r}" for r in deducted if r != failed[0]["id"]
        )
        assert all(
            e.data["recipient_unit"]
            == supervising_unit(by_id[e.data["context"]["case_id"]]["unit"])
            for e in escalations
        )
        overdue = (await http.get("/v1/casereview/rectifications", params={"overdue": True})).json()
        assert overdue["total"] == len(deducted) - 1

        # -- reports per unit, JSON and CSV
        params = {"group_by": "unit", "period_from": "2025-04-01", "period_to": "2025-04-30"}
        report = (await http.get("/v1/casereview/reports", params=params)).json()
        assert sum(g["current"]["reviewed"] for g in report["groups"]) == len(reviews)
        assert sum(g["current"]["grades"][FAIL] for g in report["groups"]) == len(failed)
        assert report["compare_to"] == "2025-03-31"
        assert all(g["previous"]["reviewed"] == 0 for g in report["groups"])
        csv_r = await http.get("/v1/casereview/reports.csv", params=params)
        assert csv_r.status_code == 200 and csv_r.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(csv_r.text.lstrip("\ufeff"))))
        assert rows[0][:4] == ["unit", "name", "period", "reviewed"] and FAIL in rows[0]
        assert len(rows) == len(report["groups"]) + 1
        by_unit = {row[0]: row for row in rows[1:]}
        for g in report["groups"]:
            assert int(by_unit[g["key"]][3]) == g["current"]["reviewed"]

    verbs = Counter(e.type.rsplit(".", 1)[-1] for e in events.events())
    assert verbs["registered"] == 200
    assert verbs["sampled"] == verbs["review_assigned"] == verbs["scored"] == len(reviews)
    assert verbs["rectification_required"] == len(deducted)
    assert verbs["rectification_answered"] == verbs["rectification_closed"] == 1
    assert verbs["rectification_overdue"] == len(deducted) - 1
    snapshot = of_type(events.events(), "scored")[0].data["case"]
    assert {"id", "district", "unit", "status", "updated_at", "grade"} <= set(snapshot)


async def test_invalid_case_file_is_quarantined_with_the_reason(
    settings_for: Callable[..., CasereviewSettings], publisher: Publisher
) -> None:
    settings = settings_for(CasereviewSettings)
    bad = clean_file(case_id="BAD-1")
    bad["procedure"] = "express"
    async with build(settings, clock=ManualClock(NOW)).running() as svc:
        await publisher.event(svc.topic(INGEST_ENFORCEMENT), closed_event(bad))
        doc = await eventually(lambda: svc.db["quarantine"].find_one({}))
        assert "procedure" in doc["reason"]
        assert await svc.db["cases"].count_documents({}) == 0


async def test_sent_back_rectification_gets_a_new_round_and_escalates_once(
    settings_for: Callable[..., CasereviewSettings], publisher: Publisher, tap: Any
) -> None:
    settings = settings_for(CasereviewSettings, rectification_days=10)
    notices: KafkaTap = await tap(settings.topic_prefix + NOTIFY_REQUESTS.name)
    clock = ManualClock(NOW)
    data = clean_file(case_id="310106-cgzf-2025-000900")
    data["officers"] = data["officers"][:1]
    async with build(settings, clock=clock).running() as svc, api_client(svc) as http:
        # bad input answers 4xx with the reason
        assert (await http.get("/v1/casereview/cases/none")).status_code == 404
        assert (await http.get("/v1/casereview/reviews/none")).status_code == 404
        spec = {"name": "x", "period_from": "2025-04-01", "period_to": "2025-04-30"}
        empty = await http.post("/v1/casereview/campaigns", json={**spec, "k_per_unit": 1})
        assert empty.status_code == 409 and "no case files" in empty.json()["detail"]
        reversed_period = await http.get(
            "/v1/casereview/reports",
            params={"period_from": "2025-05-01", "period_to": "2025-04-01"},
        )
        assert reversed_period.status_code == 422
        for ancient in (
            {"period_from": "0229-07-02", "period_to": "1367-07-15"},  # found by fuzz
            {"period_from": "0001-01-01", "period_to": "0001-01-31"},
        ):
            refused = await http.get("/v1/casereview/reports", params=ancient)
            assert refused.status_code == 422, refused.text

        await publisher.event(svc.topic(INGEST_ENFORCEMENT), closed_event(data))
        await eventually(lambda: svc.db["cases"].find_one({"_id": data["case_id"]}))
        unknown = await http.post(
            "/v1/casereview/campaigns",
            json={**spec, "k_per_unit": 1, "reviewer_ids": ["nobody"]},
        )
        assert unknown.status_code == 409 and "nobody" in unknown.json()["detail"]
        campaign = (
            await http.post("/v1/casereview/campaigns", json={**spec, "percent": "50", "seed": "s"})
        ).json()
        review_id = f"{campaign['id']}:{data['case_id']}"
        review = (await http.get(f"/v1/casereview/reviews/{review_id}")).json()
        decisions = [{"proposal": p["id"], "action": "confirm"} for p in review["proposals"]]
        scored = await http.post(
            f"/v1/casereview/reviews/{review_id}/score",
            json={"reviewer_id": review["reviewer_id"], "decisions": decisions},
        )
        assert scored.json()["grade"] == FAIL and scored.json()["score"] == 0
        rect_id = f"rect:{review_id}"
        base = f"/v1/casereview/rectifications/{rect_id}"
        premature = await http.post(f"{base}/close", json={"by": "310106-sfj", "accepted": True})
        assert premature.status_code == 409
        first_deadline = dt.datetime.fromisoformat((await http.get(base)).json()["deadline"])
        answer = {"unit": data["unit"], "measures": "补充执法人员"}
        assert (await http.post(f"{base}/answer", json=answer)).status_code == 200
        no_reason = await http.post(f"{base}/close", json={"by": "310106-sfj", "accepted": False})
        assert no_reason.status_code == 422
        clock.advance(dt.timedelta(days=2))
        back = await http.post(
            f"{base}/close", json={"by": "310106-sfj", "accepted": False, "comment": "未附培训记录"}
        )
        assert back.status_code == 200
        assert back.json()["status"] == "open" and back.json()["round"] == 2
        second_deadline = dt.datetime.fromisoformat(back.json()["deadline"])
        assert second_deadline > first_deadline

        clock.set(first_deadline + dt.timedelta(seconds=1))
        assert await svc.timers.tick() == 0  # type: ignore[union-attr]
        clock.set(second_deadline + dt.timedelta(seconds=1))
        assert await svc.timers.tick() == 1  # type: ignore[union-attr]
        assert await svc.timers.tick() == 0  # type: ignore[union-attr]
        await notices.wait_for_events(
            lambda es: any(e.data["kind"] == NoticeKind.ESCALATION for e in es)
        )
        keys = sorted(e.data["idempotency_key"] for e in notices.events())
    assert keys == [
        f"casereview:escalation:{rect_id}:2",
        f"casereview:rectification:{rect_id}:1",
        f"casereview:rectification:{rect_id}:2",
    ]


async def test_precheck_judges_certificates_by_the_officer_registry_copy(
    settings_for: Callable[..., CasereviewSettings], publisher: Publisher
) -> None:
    """The inspection service's registry (``officer.changed``) beats the file's own record."""
    settings = settings_for(CasereviewSettings)
    revoked = {
        "id": "ZF-002",
        "unit": "310106-cgzf",
        "district": "310106",
        "registered": True,
        "status": "revoked",
        "cert_no": "31010600456",
        "valid_from": "2020-01-01",
        "valid_until": "2027-06-30",
        "revoked_since": "2025-03-15",
    }
    change = Envelope(
        type=OFFICER_CHANGED_TYPE,
        source="/jiandu/inspection",
        subject="officer/ZF-002",
        district="310106",
        partitionkey="ZF-002",
        data={"officer": revoked, "change": {"action": "revoked"}},
    )
    async with build(settings, clock=ManualClock(NOW)).running() as svc:
        await publisher.event(svc.topic(INSPECTION_EVENTS), change)
        await eventually(lambda: svc.db["officers"].find_one({"_id": "ZF-002"}))
        await publisher.event(svc.topic(INGEST_ENFORCEMENT), closed_event(clean_file("REG-1")))
        other = clean_file("REG-2", unit="310106-scjg")
        other["officers"] = [
            {"id": "SJ-001", "cert_no": "31010600777", "cert_valid_until": "2027-01-01"},
            {"id": "SJ-002", "cert_no": "31010600778", "cert_valid_until": "2027-01-01"},
        ]
        await publisher.event(svc.topic(INGEST_ENFORCEMENT), closed_event(other))

        async def both_judged() -> list[dict[str, Any]] | None:
            docs = await svc.db["cases"].find({"_id": {"$in": ["REG-1", "REG-2"]}}).to_list()
            return docs if len(docs) == 2 else None

        judged = await eventually(both_judged)
    by_id = {c["_id"]: c for c in judged}
    (finding,) = [f for f in by_id["REG-1"]["findings"] if f["code"] == "OFFICER_CERT_INVALID"]
    assert finding["evidence"]["officer"] == "ZF-002"
    assert finding["evidence"]["source"] == "registry"
    assert "OFFICER_CERT_INVALID" not in by_id["REG-2"]["finding_codes"]  # not in the registry


async def test_unit_self_review_is_shown_to_the_reviewer_and_closes_when_scored(
    settings_for: Callable[..., CasereviewSettings], publisher: Publisher, tap: Any
) -> None:
    """Seed 002 (案卷评查): the unit reviews its own file (自查) and submits a written
    self-assessment (书面自评报告) before the bureau's review; the reviewer sees it next to the
    pre-check's proposals, the report counts it, and once scored it can no longer change."""
    settings = settings_for(CasereviewSettings)
    events: KafkaTap = await tap(settings.topic_prefix + CASEREVIEW_EVENTS.name)
    data = clean_file(case_id="310106-cgzf-2025-000777")
    data = without_doc(data, "结案报告")  # a pre-check finding next to the self-review
    unit, path = data["unit"], f"/v1/casereview/cases/{data['case_id']}/self-review"
    body = {
        "conclusion": "案卷基本规范，结案报告缺失",
        "problems": ["结案报告缺失"],
        "score": 85,
        "submitted_at": "2025-05-05T09:00:00+08:00",
    }
    async with (
        build(settings, clock=ManualClock(NOW)).running() as svc,
        api_client(svc) as http,
        api_client(svc, anonymous=True) as raw,
    ):
        await publisher.event(svc.topic(INGEST_ENFORCEMENT), closed_event(data))
        await eventually(lambda: svc.db["cases"].find_one({"_id": data["case_id"]}))
        own = bearer(svc.settings, Role.UNIT_OFFICER, unit=unit)
        sibling = bearer(svc.settings, Role.UNIT_OFFICER, unit="310106-scjg")

        first = await raw.post(path, json=body, headers=own)  # the token's unit, none named
        assert first.status_code == 200, first.text
        assert first.json()["self_review"]["unit"] == unit
        assert first.json()["self_review"]["revision"] == 1
        other = await raw.post(path, json={**body, "unit": "310106-scjg"}, headers=own)
        assert other.status_code == 403
        assert (await raw.post(path, json=body, headers=sibling)).status_code == 404
        assert (await http.post(path, json={**body, "unit": unit, "score": 101})).status_code == 422

        spec = {"name": "自查", "period_from": "2025-04-01", "period_to": "2025-04-30"}
        campaign = await http.post("/v1/casereview/campaigns", json={**spec, "percent": "100"})
        assert campaign.status_code == 201, campaign.text
        review_url = f"/v1/casereview/reviews/{campaign.json()['id']}:{data['case_id']}"
        review = (await http.get(review_url)).json()
        assert review["self_review"]["score"] == 85
        assert "DOC_MISSING" in [p["finding_code"] for p in review["proposals"]]

        # sampled, not yet scored: a second report replaces the first, the reviewer sees it
        again = await http.post(path, json={**body, "unit": unit, "score": 70})
        assert again.status_code == 200, again.text
        assert again.json()["self_review"]["revision"] == 2
        shown = (await http.get(review_url)).json()["self_review"]
        assert (shown["score"], shown["revision"]) == (70, 2)

        decisions = [{"proposal": p["id"], "action": "confirm"} for p in review["proposals"]]
        scored = await http.post(
            f"{review_url}/score",
            json={"reviewer_id": review["reviewer_id"], "decisions": decisions},
        )
        assert scored.status_code == 200, scored.text
        late = await http.post(path, json={**body, "unit": unit})
        assert late.status_code == 409 and "started" in late.json()["detail"]

        report = await http.get(
            "/v1/casereview/reports",
            params={"period_from": "2025-04-01", "period_to": "2025-04-30", "group_by": "unit"},
        )
        (group,) = report.json()["groups"]
        assert (group["key"], group["current"]["reviewed"]) == (unit, 1)
        assert group["current"]["self_reviewed"] == 1

        seen = await events.wait_for_events(lambda es: bool(of_type(es, "scored")))
    (event,) = of_type(seen, "self_reviewed")  # once per case, whatever the replacements
    assert event.data["change"]["by"] == unit and event.data["change"]["score"] == 85
