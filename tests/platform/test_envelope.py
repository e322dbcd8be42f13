"""The CloudEvents envelope and its Kafka binary encoding (no servers)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.envelope import MAX_EVENT_BYTES, Envelope, EventRejected


def make(**data: object) -> Envelope:
    return Envelope(
        type="gov.12345.workorder.created",
        source="/12345",
        subject="order/1",
        district="310106",
        partitionkey="ORD-1",
        data=dict(data),
    )


def test_round_trip_keeps_every_attribute_and_the_key() -> None:
    event = make(description="占道经营", n=3)
    key, value, headers = event.to_kafka()
    assert key == b"ORD-1"
    assert headers["ce_district"] == "310106" and headers["ce_partitionkey"] == "ORD-1"
    back = Envelope.from_kafka(value, {k: v.encode() for k, v in headers.items()}, key)
    assert back == event


def test_over_64_kib_is_refused_both_ways() -> None:
    with pytest.raises(EventRejected) as exc:
        make(blob="x" * MAX_EVENT_BYTES).to_kafka()
    assert exc.value.code == "too_large"
    with pytest.raises(EventRejected, match="over 64 KiB"):
        Envelope.from_kafka(b"x" * (MAX_EVENT_BYTES + 1), {"ce_id": b"1"}, None)


@pytest.mark.parametrize(
    ("attrs", "reason"),
    [
        ({"district": "Jingan"}, "district"),
        ({"specversion": "0.3"}, "specversion"),
        ({"source": ""}, "source"),
        ({"partitionkey": None}, "partitionkey"),
    ],
)
def test_invalid_attributes_give_a_reason_naming_the_field(
    attrs: dict[str, object], reason: str
) -> None:
    base = make().model_dump()
    base.update(attrs)
    with pytest.raises(EventRejected) as exc:
        Envelope.parse_attributes(base)
    assert reason in exc.value.reason


def test_missing_ce_headers_and_non_json_data_are_rejected() -> None:
    with pytest.raises(EventRejected, match="no CloudEvents"):
        Envelope.from_kafka(b"{}", {}, None)
    _, _, headers = make().to_kafka()
    raw = {k: v.encode() for k, v in headers.items()}
    with pytest.raises(EventRejected, match="not JSON"):
        Envelope.from_kafka(b"\xff\xfe", raw, None)
    with pytest.raises(EventRejected, match="object"):
        Envelope.from_kafka(b"[1, 2]", raw, None)


@given(
    st.binary(max_size=512),
    st.dictionaries(
        st.sampled_from(["ce_id", "ce_type", "ce_source", "ce_specversion", "content-type", "x"]),
        st.binary(max_size=40),
    ),
)
def test_any_bytes_either_decode_or_raise_event_rejected(
    value: bytes, headers: dict[str, bytes]
) -> None:
    try:
        Envelope.from_kafka(value, headers, None)
    except EventRejected as exc:
        assert exc.reason


def test_extension_attributes_and_dataschema_travel_in_kafka_headers() -> None:
    event = Envelope.parse_attributes(
        {
            **make(n=1).model_dump(mode="json"),
            "dataschema": "https://example.org/s.json",
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "flag": True,
            "count": 3,
            "gone": None,  # null counts as absent
        }
    )
    assert set(event.extension_attributes) == {"traceparent", "flag", "count"}
    key, value, headers = event.to_kafka()
    assert headers["ce_flag"] == "true" and headers["ce_count"] == "3"
    assert headers["ce_dataschema"] == "https://example.org/s.json"
    back = Envelope.from_kafka(value, {k: v.encode() for k, v in headers.items()}, key)
    assert back.dataschema == event.dataschema
    assert back.extension_attributes == {
        "traceparent": event.extension_attributes["traceparent"],
        "flag": "true",
        "count": "3",
    }


@pytest.mark.parametrize(
    "extension",
    [
        {"Upper": "x"},
        {"under_score": "x"},
        {"a" * 21: "x"},
        {"f": 1.5},
        {"f": {"nested": 1}},
        {f"e{i}": "x" for i in range(17)},
        {"big": "x" * 2049},
    ],
)
def test_extensions_outside_the_spec_or_the_bounds_are_refused(
    extension: dict[str, object],
) -> None:
    with pytest.raises(EventRejected) as exc:
        Envelope.parse_attributes({**make().model_dump(mode="json"), **extension})
    assert "extension_attributes" in exc.value.reason
