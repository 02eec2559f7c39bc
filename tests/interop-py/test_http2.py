"""HTTP/2 through the gate with httpx over the `h2` library, unmodified: cleartext HTTP/2 with prior knowledge
(h2c, RFC 9113 §3.3) on the same port as HTTP/1.1. The upstream behind the gate is still spoken to in HTTP/1.1.
"""

from __future__ import annotations

import secrets

import httpx
import pytest
from authlib.integrations.requests_client import OAuth2Session

from conftest import HTTP_TIMEOUT_S


@pytest.fixture(scope="module")
def reader_token(admin, metadata) -> str:
    client, secret = admin.create_client(
        client_id=f"h2-{secrets.token_hex(4)}",
        name="http2 test",
        token_endpoint_auth_method="client_secret_basic",
        grant_types=["client_credentials"],
        allowed_scopes=["accounts:read"],
    )
    session = OAuth2Session(client["client_id"], secret, scope="accounts:read")
    token = session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials", timeout=HTTP_TIMEOUT_S)
    return token["access_token"]


@pytest.fixture
def h2c():
    # http1=False with http2=True: httpx speaks HTTP/2 from the first byte on a cleartext connection.
    with httpx.Client(http1=False, http2=True, timeout=HTTP_TIMEOUT_S) as client:
        yield client


def test_calls_over_h2c_are_enforced_and_answered(argus, reader_token, h2c):
    gate = argus.urls["gate"]
    allowed = h2c.get(f"{gate}/accounts", headers={"Authorization": f"Bearer {reader_token}"})
    assert allowed.http_version == "HTTP/2"
    assert allowed.status_code == 200, allowed.text
    assert allowed.json() == [], "a client-credentials caller owns no accounts"
    assert allowed.headers["x-request-id"]

    refused = h2c.get(f"{gate}/accounts")
    assert refused.http_version == "HTTP/2"
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "urn:argus:problem:missing-token"
    assert refused.headers["www-authenticate"].startswith("Bearer")

    # The operation's methods come back in `Allow`, as over HTTP/1.1.
    wrong_method = h2c.delete(f"{gate}/accounts", headers={"Authorization": f"Bearer {reader_token}"})
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "GET"


def test_many_streams_share_one_connection(argus, reader_token, h2c):
    gate = argus.urls["gate"]
    replies = [h2c.get(f"{gate}/accounts", headers={"Authorization": f"Bearer {reader_token}"}) for _ in range(5)]
    assert all(r.status_code == 200 and r.http_version == "HTTP/2" for r in replies)


def test_http1_still_works_on_the_same_port(argus, reader_token):
    with httpx.Client(timeout=HTTP_TIMEOUT_S) as client:
        reply = client.get(f"{argus.urls['gate']}/accounts", headers={"Authorization": f"Bearer {reader_token}"})
    assert reply.http_version == "HTTP/1.1"
    assert reply.status_code == 200
