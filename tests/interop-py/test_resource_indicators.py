"""Resource indicators (RFC 8707) and EdDSA id_tokens with authlib, unmodified.

authlib passes `resource` as an extra parameter of the authorization URL and of the token request; the access token
that comes back must be for that resource (its `aud`, checked with joserfc against the JWKS), an unknown resource is
refused with `invalid_target`, and a refresh cannot widen the grant. The same Argus signs with an Ed25519 key (added
with `argus keys rotate --alg EdDSA`), and authlib's own id_token claims check validates the `at_hash` it computes for
EdDSA (the left half of SHA-512).
"""

from __future__ import annotations

import html
import re
import secrets
import shutil
import subprocess
import time
from urllib.parse import urljoin

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidClaimError
from joserfc.jwk import KeySet

from conftest import ARGUS_BIN, CONFIG_TOML, HTTP_TIMEOUT_S, AdminApi, start_argus

REPORTS = "https://reports.example/api"
SCOPE = "accounts:read"
HIDDEN_INPUT = re.compile(r'<input type="hidden" name="([^"]*)" value="([^"]*)">')
# The banner line of the demo users: `  users     alice, bob   password: <password>`.
USERS_LINE = re.compile(r"^\s+users\s.*password:\s+(\S+)\s*$", re.MULTILINE)


@pytest.fixture(scope="module")
def argus():
    """An Argus that knows one resource besides its API and picks up new signing keys at once."""
    extra = f'resources = ["{REPORTS}"]\nkey_publish_lead_secs = 0\nkey_reload_secs = 1\n'
    instance = start_argus(CONFIG_TOML.replace("[issuer]\n", "[issuer]\n" + extra, 1))
    yield instance
    instance.stop()
    shutil.rmtree(instance.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def metadata(argus) -> dict:
    reply = requests.get(f"{argus.issuer}/.well-known/openid-configuration", timeout=HTTP_TIMEOUT_S)
    reply.raise_for_status()
    return reply.json()


def jwks(metadata) -> KeySet:
    return KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=HTTP_TIMEOUT_S).json())


def audience(metadata, access_token: str) -> str:
    """The `aud` of an access token whose signature verifies with the JWKS."""
    token = jwt.decode(access_token, jwks(metadata), algorithms=["ES256", "EdDSA"])
    registry = jwt.JWTClaimsRegistry(iss={"essential": True, "value": metadata["issuer"]}, aud={"essential": True})
    registry.validate(token.claims)
    return token.claims["aud"]


@pytest.fixture(scope="module")
def service(argus, metadata) -> tuple[str, str]:
    """A confidential client of the client-credentials grant, registered through the admin API."""
    admin = OAuth2Session(argus.admin_client_id, argus.admin_client_secret, scope="argus:admin")
    token = admin.fetch_token(metadata["token_endpoint"], grant_type="client_credentials", timeout=HTTP_TIMEOUT_S)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token['access_token']}"
    client, secret = AdminApi(issuer=argus.issuer, session=session).create_client(
        client_id=f"svc-{secrets.token_hex(4)}",
        name="authlib resource client",
        token_endpoint_auth_method="client_secret_basic",
        grant_types=["client_credentials"],
        allowed_scopes=[SCOPE],
    )
    return client["client_id"], secret


def test_client_credentials_token_is_for_the_named_resource(argus, metadata, service):
    client_id, secret = service
    session = OAuth2Session(client_id, secret, scope=SCOPE)
    token = session.fetch_token(
        metadata["token_endpoint"], grant_type="client_credentials", resource=REPORTS, timeout=HTTP_TIMEOUT_S
    )
    assert audience(metadata, token["access_token"]) == REPORTS
    plain = session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials", timeout=HTTP_TIMEOUT_S)
    assert audience(metadata, plain["access_token"]) == argus.urls["gate"], "no resource: the API, as before"

    with pytest.raises(OAuthError) as refused:
        session.fetch_token(
            metadata["token_endpoint"],
            grant_type="client_credentials",
            resource="https://evil.example/api",
            timeout=HTTP_TIMEOUT_S,
        )
    assert refused.value.error == "invalid_target"


def rotate_to_eddsa(argus, metadata) -> None:
    """`argus keys rotate --alg EdDSA` on the running Argus's data directory; wait until it signs (lead 0)."""
    out = subprocess.run(
        [ARGUS_BIN, "keys", "rotate", "--alg", "EdDSA", "--data-dir", str(argus.tmp / "data")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        keys = requests.get(metadata["jwks_uri"], timeout=HTTP_TIMEOUT_S).json()["keys"]
        if any(k.get("alg") == "EdDSA" for k in keys):
            return
        time.sleep(0.1)
    raise AssertionError("the EdDSA key was not published")


def sign_in(argus, authorization_url: str) -> str:
    """The browser's part: the login form (and the consent page if asked), then the redirect back; its URL."""
    browser = requests.Session()
    page = browser.get(authorization_url, allow_redirects=False, timeout=HTTP_TIMEOUT_S)
    assert page.status_code == 200, page.text
    fields = {html.unescape(k): html.unescape(v) for k, v in HIDDEN_INPUT.findall(page.text)}
    password = USERS_LINE.search("".join(argus.stdout)).group(1)
    fields.update(username="alice", password=password)
    reply = browser.post(urljoin(argus.issuer, "/login"), data=fields, allow_redirects=False, timeout=HTTP_TIMEOUT_S)
    if reply.status_code == 200:
        fields = {html.unescape(k): html.unescape(v) for k, v in HIDDEN_INPUT.findall(reply.text)}
        fields["decision"] = "allow"
        reply = browser.post(
            urljoin(argus.issuer, "/consent"), data=fields, allow_redirects=False, timeout=HTTP_TIMEOUT_S
        )
    assert reply.status_code == 303, reply.text
    return reply.headers["location"]


def test_code_flow_with_a_resource_and_an_eddsa_id_token(argus, metadata):
    rotate_to_eddsa(argus, metadata)
    redirect_uri = f"http://127.0.0.1:{secrets.choice(range(20000, 60000))}/callback"
    session = OAuth2Session(
        "demo-app",
        redirect_uri=redirect_uri,
        scope=f"openid {SCOPE}",
        token_endpoint_auth_method="none",
        code_challenge_method="S256",
    )
    verifier = generate_token(48)
    nonce = generate_token(20)
    url, _state = session.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce, resource=REPORTS
    )
    callback = sign_in(argus, url)
    token = session.fetch_token(
        metadata["token_endpoint"],
        authorization_response=callback,
        code_verifier=verifier,
        resource=REPORTS,
        timeout=HTTP_TIMEOUT_S,
    )
    assert audience(metadata, token["access_token"]) == REPORTS

    # authlib's own id_token validation, as its OpenID clients run it: signature, claims, and at_hash for EdDSA.
    decoded = jwt.decode(token["id_token"], jwks(metadata), algorithms=["EdDSA"])
    assert decoded.header["alg"] == "EdDSA"
    options = {"iss": {"values": [metadata["issuer"]]}}
    params = {"nonce": nonce, "client_id": "demo-app", "access_token": token["access_token"]}
    CodeIDToken(decoded.claims, decoded.header, options, params).validate()
    with pytest.raises(InvalidClaimError):
        other = {**params, "access_token": token["access_token"] + "x"}
        CodeIDToken(decoded.claims, decoded.header, options, other).validate()

    # The grant covers the reports API only: a refresh may not widen it to the gate's API.
    with pytest.raises(OAuthError) as refused:
        session.refresh_token(
            metadata["token_endpoint"],
            refresh_token=token["refresh_token"],
            resource=argus.urls["gate"],
            timeout=HTTP_TIMEOUT_S,
        )
    assert refused.value.error == "invalid_target"
    refreshed = session.refresh_token(
        metadata["token_endpoint"], refresh_token=token["refresh_token"], timeout=HTTP_TIMEOUT_S
    )
    assert audience(metadata, refreshed["access_token"]) == REPORTS
