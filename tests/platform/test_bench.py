"""``jiandu bench --quick``: the whole measurement runs and reports sound figures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devtools.benchmark import BenchPlan, explain_limit, percentiles
from devtools.cli import app
from shared.registry import SERVICES

pytestmark = pytest.mark.integration


def test_percentiles_by_nearest_rank() -> None:
    stats = percentiles([float(v) for v in range(1, 101)])
    assert (stats["p50"], stats["p95"], stats["p99"], stats["n"]) == (50.0, 95.0, 99.0, 100)
    assert percentiles([]) == {}


def test_limit_names_the_saturated_process() -> None:
    busy = {"mongodb": {"cpu_pct_of_one_core": 97.0}, "hotline-0": {"cpu_pct_of_one_core": 30.0}}
    assert explain_limit(busy, cpus=4).startswith("MongoDB")
    spread = {f"s{i}": {"cpu_pct_of_one_core": 60.0} for i in range(4)}
    assert "CPUs were saturated" in explain_limit(spread, cpus=2)
    crowded = explain_limit(busy, cpus=2, machine_pct=195.0)
    assert "outside the bench" in crowded and "68%" in crowded


def test_events_option_sets_the_phase_size() -> None:
    start = datetime.now(UTC) - timedelta(days=20)
    plan = BenchPlan.of([1], quick=True, events=40)
    assert [len(plan.demo_events(seed, start)) for seed in (1, 2, 3)] == [40, 40, 40]
    assert len(BenchPlan.of([1], quick=True).demo_events(1, start)) > 40


def test_a_run_takes_the_median_of_three_bursts_unless_told() -> None:
    assert BenchPlan.of([1], quick=False).bursts == 3
    assert BenchPlan.of([1], quick=True).bursts == 1
    assert BenchPlan.of([1], quick=True, bursts=2).bursts == 2


def test_quick_bench_reports_rates_latencies_and_processes(tmp_path: Path) -> None:
    out = tmp_path / "bench" / "report.json"
    args = ["bench", "--quick", "--bursts", "3", "--replicas", "1", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--work-dir", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    assert "Jiandu bench" in result.output  # the summary table
    report = json.loads(out.read_text())
    raw = {r["name"]: r["per_second"] for r in report["raw"]}
    assert set(raw) == {"kafka_produce", "kafka_consume", "mongo_insert_one", "mongo_insert_many"}
    assert all(rate > 0 for rate in raw.values())
    run, full = report["end_to_end"]
    assert run["replicas"] == 1 and run["events"] > 0 and run["sustained_events_per_s"] > 0
    assert len(run["bursts"]) == 3 and run["sustained_events_per_s"] == sorted(run["bursts"])[1]
    assert "median of" in result.output
    for each in (run, full):  # the ratio is the rate over the same run's insert_one rate
        expected = each["sustained_events_per_s"] / raw["mongo_insert_one"]
        assert each["ratio_to_mongo_insert_one"] == pytest.approx(expected, abs=0.001)
    assert full["prefilled"] == 2_000 and full["sustained_events_per_s"] > 0 and not full["paced"]
    catch = report["catch_up"]
    assert catch["events"] == 300 and catch["seconds_from_start"] >= catch["seconds_from_ready"]
    assert catch["events_per_s"] == pytest.approx(300 / catch["seconds_from_ready"], rel=0.01)
    costs = run["costs"]
    assert costs["events"] == run["events"]
    assert set(costs["services"]) == set(SERVICES)
    per_service = sum(row["commands"] for row in costs["services"].values())
    assert costs["commands_per_event"] == pytest.approx(per_service, abs=0.01)
    assert costs["commands_per_event"] > 0 and costs["documents_per_event"] > 0
    for row in costs["services"].values():
        assert row["commands"] == pytest.approx(sum(row["commands_by_name"].values()), abs=0.02)
    assert [p["share"] for p in run["paced"]] == [0.5, 1.0]
    for paced in run["paced"]:
        routed = paced["ingest_to_routed"]
        assert routed["n"] > 0 and 0 < routed["p50"] <= routed["p95"] <= routed["p99"]
        notice = paced["ingest_to_notice"]
        assert not notice or notice["p50"] <= notice["p95"] <= notice["p99"]
        # what the paced run cost: the same accounting as a burst's, and the CPU it took
        work = paced["costs"]
        assert work["events"] > 0 and set(work["services"]) == set(SERVICES)
        assert work["commands_per_event"] > 0 and paced["cpu_pct_of_one_core"] > 0
        hotline = work["services"]["hotline"]
        assert hotline["batches"] > 0 and hotline["records_per_batch"] > 0
        assert {f"{name}-0" for name in SERVICES} <= set(paced["processes"])
    assert "@50% work" in result.output and "records per batch" in result.output
    assert any(p["ingest_to_notice"].get("n") for p in run["paced"]), "notices followed"
    # the bench runs the platform as ``jiandu run`` does: a SecantusDB process per service
    mongos = {f"mongodb-{name}" for name in SERVICES}
    assert {f"{name}-0" for name in SERVICES} | mongos | {"kafka"} <= set(run["processes"])
    assert all(p["peak_rss_mb"] > 0 and p["cpu_s"] >= 0 for p in run["processes"].values())
    assert sum(run["processes"][f"{name}-0"]["cpu_s"] for name in SERVICES) > 0
    assert run["limit"] and run["machine_cpu_pct_of_one_core"] > 0
    png = out.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_alone_measures_the_gateway_on_what_the_others_emitted(tmp_path: Path) -> None:
    """``jiandu bench-alone --service gateway``: the other services' output for the demo is
    recorded in a first stage, then the gateway alone drains it; the report counts every
    record and what it cost (its process, its SecantusDB, noida-db; commands, documents)."""
    out = tmp_path / "alone.json"
    result = CliRunner().invoke(
        app, ["bench-alone", "--service", "gateway", "--orders", "200", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["service"] == "gateway" and report["rate"] is None
    assert report["events"] > 12  # each order emits several complaint events, cases more
    assert report["batches"] >= 1 and report["records_per_batch"] > 0
    assert set(report["cpu_ms_per_event"]) == {"service", "mongodb", "kafka"}
    assert all(ms > 0 for ms in report["cpu_ms_per_event"].values())
    assert report["commands_per_batch"]["commitTransaction"] > 0
    assert 0 < report["documents_per_event"] < 8


def test_bench_alone_feeds_each_service_what_it_consumes() -> None:
    """Notify's requests come from the services that ask for notices; the gateway's from every
    other service; hotline, penalty and inspection read only what the demo ingests."""
    from devtools.bench_alone import producers_for

    assert producers_for("hotline") == producers_for("penalty") == []
    assert producers_for("inspection") == []
    assert set(producers_for("notify")) == {"hotline", "casereview", "penalty", "inspection"}
    assert producers_for("casereview") == ["inspection"]
    assert set(producers_for("gateway")) == set(SERVICES) - {"gateway"}


def test_bench_alone_refuses_a_service_it_does_not_know() -> None:
    result = CliRunner().invoke(app, ["bench-alone", "--service", "nosuch", "--orders", "1"])
    assert result.exit_code != 0
    assert "hotline" in str(result.exception) and "nosuch" in str(result.exception)
