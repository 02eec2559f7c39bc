"""Introspection (RFC 7662) and revocation (RFC 7009) with authlib's client, unmodified.

A resource server is a confidential client with the client-credentials grant and scope `argus:introspect`: it may
introspect any token. Any other confidential client sees only its own tokens; everything else is `active: false`.
"""

from __future__ import annotations

import time

import requests
from authlib.integrations.requests_client import OAuth2Session

from conftest import HTTP_TIMEOUT_S
from test_client_credentials import SCOPE, secret_client


def session_of(client_id: str, secret: str, scope: str | None = None) -> OAuth2Session:
    return OAuth2Session(client_id, secret, token_endpoint_auth_method="client_secret_basic", scope=scope)


def introspect(session: OAuth2Session, metadata: dict, token: str, hint: str | None = None) -> dict:
    reply = session.introspect_token(
        metadata["introspection_endpoint"], token=token, token_type_hint=hint, timeout=HTTP_TIMEOUT_S
    )
    assert reply.status_code == 200, reply.text
    assert reply.headers["Cache-Control"] == "no-store"
    return reply.json()


def test_resource_server_introspects_and_sees_revocation(argus, admin, metadata):
    rs_id, rs_secret = secret_client(admin, scopes=("argus:introspect",))
    resource_server = session_of(rs_id, rs_secret)
    service_id, service_secret = secret_client(admin)
    service = session_of(service_id, service_secret, SCOPE)
    token = service.fetch_token(metadata["token_endpoint"], grant_type="client_credentials", timeout=HTTP_TIMEOUT_S)

    active = introspect(resource_server, metadata, token["access_token"], "access_token")
    assert active["active"] is True, active
    assert active["client_id"] == service_id
    assert active["sub"] == service_id
    assert active["scope"] == SCOPE
    assert active["iss"] == argus.issuer
    assert argus.urls["gate"] in (active["aud"] if isinstance(active["aud"], list) else [active["aud"]])
    assert active["token_type"].lower() == "bearer"
    now = time.time()
    assert active["iat"] <= now + 5 and active["exp"] > now
    assert active["jti"]

    reply = service.revoke_token(
        metadata["revocation_endpoint"], token=token["access_token"], token_type_hint="access_token",
        timeout=HTTP_TIMEOUT_S,
    )
    assert reply.status_code == 200, reply.text
    assert introspect(resource_server, metadata, token["access_token"]) == {"active": False}


def test_unknown_and_foreign_tokens_are_inactive(admin, metadata):
    rs_id, rs_secret = secret_client(admin, scopes=("argus:introspect",))
    resource_server = session_of(rs_id, rs_secret)
    for garbage in ("not-a-token", "a.b.c", "x" * 2000):
        assert introspect(resource_server, metadata, garbage) == {"active": False}

    # A client without argus:introspect sees its own token, not another client's.
    mine_id, mine_secret = secret_client(admin)
    theirs_id, theirs_secret = secret_client(admin)
    mine = session_of(mine_id, mine_secret, SCOPE)
    theirs = session_of(theirs_id, theirs_secret, SCOPE)
    my_token = mine.fetch_token(metadata["token_endpoint"], grant_type="client_credentials", timeout=HTTP_TIMEOUT_S)
    assert introspect(mine, metadata, my_token["access_token"])["active"] is True
    assert introspect(theirs, metadata, my_token["access_token"]) == {"active": False}


def test_introspection_needs_an_authenticated_client(admin, metadata):
    service_id, service_secret = secret_client(admin)
    service = session_of(service_id, service_secret, SCOPE)
    token = service.fetch_token(metadata["token_endpoint"], grant_type="client_credentials", timeout=HTTP_TIMEOUT_S)

    anonymous = requests.post(
        metadata["introspection_endpoint"], data={"token": token["access_token"]}, timeout=HTTP_TIMEOUT_S
    )
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.json()["error"] == "invalid_client"

    # A public client cannot introspect, even a token it holds (RFC 7662 §2.1: the caller is authorised).
    public = requests.post(
        metadata["introspection_endpoint"],
        data={"token": token["access_token"], "client_id": "demo-app"},
        timeout=HTTP_TIMEOUT_S,
    )
    assert public.status_code == 401, public.text
    assert public.json()["error"] == "invalid_client"

    wrong = session_of(service_id, "wrong-secret")
    reply = wrong.introspect_token(metadata["introspection_endpoint"], token=token["access_token"], timeout=HTTP_TIMEOUT_S)
    assert reply.status_code == 401
    assert reply.json()["error"] == "invalid_client"
