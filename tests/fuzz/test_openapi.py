"""Schemathesis against every service's OpenAPI: whatever a client sends, never a 5xx.

Each operation gets ``JIANDU_FUZZ_EXAMPLES`` generated requests (valid and invalid: wrong
types, out-of-range values, odd strings), sent over TCP to the running service as the city
supervisor with an ingest API key, so authorisation does not hide the handlers.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err

from tests.fuzz.conftest import BUILDS, EXAMPLES, FuzzPlatform

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning"),
]

SKIP = {
    ("GET", "/v1/stream"): "server-sent events: the response never ends",
}
NOT_READY = ("GET", "/readyz")
"""Its 503 is an answer, not a failure: a dependency did not answer the probe (the body says
which); a pooled MongoDB connection closed under load was seen to do that once."""


def server_errors(platform: FuzzPlatform, service: str) -> tuple[int, int, list[str]]:
    """(operations, requests, findings of schemathesis' ``not_a_server_error``) for one service."""
    schema = schemathesis.openapi.from_url(f"{platform.urls[service]}/openapi.json")
    operations = 0
    sent = 0
    findings: list[str] = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            findings.append(f"an operation schemathesis cannot use: {result.err()}")
            continue
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIP:
            continue
        operations += 1
        calls, found = fuzz_operation(platform, service, operation)
        sent += calls
        findings.extend(found)
    return operations, sent, findings


def fuzz_operation(platform: FuzzPlatform, service: str, operation: Any) -> tuple[int, list[str]]:
    """Up to ``EXAMPLES`` generated requests to one operation: (sent, 5xx answers)."""
    findings: list[str] = []
    calls = 0

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # a finding is reported, not shrunk
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def call(data: Any) -> None:
        nonlocal calls
        case = data.draw(operation.as_strategy())
        response = case.call(base_url=platform.urls[service], headers=platform.headers, timeout=30)
        calls += 1
        label = (operation.method.upper(), operation.path)
        if label == NOT_READY and response.status_code == 503 and not response.json()["ready"]:
            return
        try:
            case.validate_response(response, checks=[not_a_server_error])
        except (AssertionError, BaseExceptionGroup):
            findings.append(
                f"{operation.method.upper()} {operation.path} → {response.status_code}: "
                f"{case.as_curl_command()}\n{response.text[:500]}"
            )

    call()
    return calls, findings


@pytest.mark.parametrize("service", list(BUILDS))
def test_no_request_gets_a_server_error(fuzz_platform: FuzzPlatform, service: str) -> None:
    operations, sent, findings = server_errors(fuzz_platform, service)
    print(f"\n{service}: {operations} operations, {sent} requests, {len(findings)} 5xx")
    assert operations > 0 and sent >= operations, "every operation was called"
    assert findings == [], "\n\n".join(findings)
