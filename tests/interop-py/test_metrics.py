"""The gate's Prometheus metrics, scraped from the real binary's `[metrics] listen` and read with the Prometheus
project's own Python parser (`prometheus_client.parser`), unmodified.

Each test scrapes before and after its calls through the gate and checks that the counters moved by exactly the
number of calls it made (the tests of this session run one after the other, so no other call moves them).
"""

from __future__ import annotations

import secrets

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from prometheus_client.parser import text_string_to_metric_families

from conftest import HTTP_TIMEOUT_S

Samples = dict[tuple[str, frozenset], float]


def scrape(argus) -> Samples:
    reply = requests.get(argus.urls["metrics"], timeout=HTTP_TIMEOUT_S)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain"), reply.headers
    samples: Samples = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(value for (n, have), value in samples.items() if n == name and wanted <= have)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


@pytest.fixture(scope="module")
def reader_token(admin, metadata) -> str:
    """A client-credentials token with `accounts:read`, from a client registered for this module."""
    client, secret = admin.create_client(
        client_id=f"metrics-{secrets.token_hex(4)}",
        name="metrics test",
        token_endpoint_auth_method="client_secret_basic",
        grant_types=["client_credentials"],
        allowed_scopes=["accounts:read"],
    )
    session = OAuth2Session(client["client_id"], secret, scope="accounts:read")
    token = session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials", timeout=HTTP_TIMEOUT_S)
    return token["access_token"]


def test_allowed_calls_count_by_route_operation_and_bytes(argus, reader_token):
    before = scrape(argus)
    calls = 4
    sent = 0
    for _ in range(calls):
        reply = requests.get(
            f"{argus.urls['gate']}/accounts",
            headers={"Authorization": f"Bearer {reader_token}"},
            timeout=HTTP_TIMEOUT_S,
        )
        assert reply.status_code == 200, reply.text
        sent += len(reply.content)
    after = scrape(argus)

    allowed = dict(route="demo", operation="listAccounts", method="GET", status="2xx", decision="allowed", reason="-")
    assert moved(before, after, "argus_gate_requests_total", **allowed) == calls
    assert moved(before, after, "argus_gate_request_duration_seconds_count", route="demo", decision="allowed") == calls
    assert moved(before, after, "argus_gate_upstream_duration_seconds_count", route="demo", outcome="answered") == calls
    assert moved(before, after, "argus_gate_response_bytes_total", route="demo") == sent
    # The token is verified once, then found in the verified-token cache.
    assert moved(before, after, "argus_gate_token_cache_misses_total") == 1
    assert moved(before, after, "argus_gate_token_cache_hits_total") == calls - 1
    assert total(after, "argus_gate_in_flight_requests") == 0
    # Histogram buckets are cumulative, ending at +Inf with every observation.
    inf = total(after, "argus_gate_request_duration_seconds_bucket", route="demo", decision="allowed", le="+Inf")
    assert inf == total(after, "argus_gate_request_duration_seconds_count", route="demo", decision="allowed")


def test_refusals_count_by_reason_without_raw_paths(argus):
    before = scrape(argus)
    for _ in range(3):
        reply = requests.get(f"{argus.urls['gate']}/accounts", timeout=HTTP_TIMEOUT_S)
        assert reply.status_code == 401
    for n in range(2):
        # Paths nobody declared: refused as `no-operation`, and each distinct path must not become a series.
        reply = requests.get(f"{argus.urls['gate']}/nothing-here-{secrets.token_hex(4)}-{n}", timeout=HTTP_TIMEOUT_S)
        assert reply.status_code == 404
    reply = requests.request("BREW", f"{argus.urls['gate']}/accounts", timeout=HTTP_TIMEOUT_S)
    assert reply.status_code in (404, 405)
    after = scrape(argus)

    missing = dict(route="demo", method="GET", status="4xx", decision="refused", reason="missing-token")
    assert moved(before, after, "argus_gate_requests_total", **missing) == 3
    assert moved(before, after, "argus_gate_requests_total", operation="-", reason="no-operation") == 2
    assert moved(before, after, "argus_gate_requests_total", method="OTHER") == 1, "extension methods are one label"
    assert moved(before, after, "argus_gate_request_duration_seconds_count", decision="refused") == 6
    for name, labels in after:
        if name.startswith("argus_gate_"):
            assert not any("nothing-here" in value for _, value in labels), (name, labels)
