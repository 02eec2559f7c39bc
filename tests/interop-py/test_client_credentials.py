"""Client credentials with authlib, unmodified: `client_secret_basic` and `private_key_jwt` (RFC 7523).

Each test registers the client it needs through the admin API, gets a token with authlib's OAuth2Session, and checks
the token with joserfc (authlib's JOSE library) against the issuer's JWKS.
"""

from __future__ import annotations

import base64
import secrets

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from conftest import HTTP_TIMEOUT_S

SCOPE = "accounts:read"


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def verified_claims(argus, metadata, access_token: str) -> dict:
    """The claims of an access token whose signature verifies with the issuer's JWKS (RFC 9068 checks)."""
    jwks = requests.get(metadata["jwks_uri"], timeout=HTTP_TIMEOUT_S).json()
    token = jwt.decode(access_token, KeySet.import_key_set(jwks), algorithms=["ES256", "EdDSA"])
    assert token.header["typ"].lower() in ("at+jwt", "application/at+jwt"), token.header
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": argus.issuer},
        aud={"essential": True, "value": argus.urls["gate"]},
        exp={"essential": True},
        iat={"essential": True},
        jti={"essential": True},
    )
    registry.validate(token.claims)
    return token.claims


def secret_client(admin, method: str = "client_secret_basic", scopes=(SCOPE,)) -> tuple[str, str]:
    client, secret = admin.create_client(
        client_id=unique("svc"),
        name="authlib service",
        token_endpoint_auth_method=method,
        grant_types=["client_credentials"],
        allowed_scopes=list(scopes),
    )
    assert client["token_endpoint_auth_method"] == method
    assert secret, "a secret-based client gets its secret once, at creation"
    return client["client_id"], secret


def test_metadata_advertises_what_authlib_uses(metadata):
    assert "client_credentials" in metadata["grant_types_supported"]
    for method in ("client_secret_basic", "client_secret_post", "private_key_jwt"):
        assert method in metadata["token_endpoint_auth_methods_supported"], method
    assert "ES256" in metadata["token_endpoint_auth_signing_alg_values_supported"]
    assert metadata["introspection_endpoint"].startswith(metadata["issuer"])
    assert "client_secret_basic" in metadata["introspection_endpoint_auth_methods_supported"]


def test_client_secret_basic(argus, admin, metadata):
    client_id, secret = secret_client(admin)
    session = OAuth2Session(client_id, secret, token_endpoint_auth_method="client_secret_basic", scope=SCOPE)
    token = session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials", timeout=HTTP_TIMEOUT_S)

    assert token["token_type"].lower() == "bearer"
    assert token["scope"] == SCOPE
    assert 0 < token["expires_in"] <= 3600
    assert "refresh_token" not in token, "client credentials never get a refresh token (RFC 6749 §4.4.3)"
    assert "id_token" not in token
    claims = verified_claims(argus, metadata, token["access_token"])
    assert claims["sub"] == client_id
    assert claims["client_id"] == client_id
    assert claims["scope"] == SCOPE


def test_client_secret_post(argus, admin, metadata):
    client_id, secret = secret_client(admin, method="client_secret_post")
    session = OAuth2Session(client_id, secret, token_endpoint_auth_method="client_secret_post", scope=SCOPE)
    token = session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials", timeout=HTTP_TIMEOUT_S)
    assert verified_claims(argus, metadata, token["access_token"])["client_id"] == client_id


def test_client_secret_basic_refusals(admin, metadata):
    client_id, secret = secret_client(admin)
    wrong = OAuth2Session(client_id, secret[:-2] + "xx", token_endpoint_auth_method="client_secret_basic")
    with pytest.raises(OAuthError) as refused:
        wrong.fetch_token(metadata["token_endpoint"], grant_type="client_credentials", timeout=HTTP_TIMEOUT_S)
    assert refused.value.error == "invalid_client"

    # A registered method is the only one accepted: the same secret in the body is refused.
    post = OAuth2Session(client_id, secret, token_endpoint_auth_method="client_secret_post")
    with pytest.raises(OAuthError) as refused:
        post.fetch_token(metadata["token_endpoint"], grant_type="client_credentials", timeout=HTTP_TIMEOUT_S)
    assert refused.value.error == "invalid_client"

    # A scope the client may not ask for.
    greedy = OAuth2Session(client_id, secret, token_endpoint_auth_method="client_secret_basic", scope="argus:admin")
    with pytest.raises(OAuthError) as refused:
        greedy.fetch_token(metadata["token_endpoint"], grant_type="client_credentials", timeout=HTTP_TIMEOUT_S)
    assert refused.value.error == "invalid_scope"

    # The answer to a bad secret is 401 with a Basic challenge (RFC 6749 §5.2).
    basic = base64.b64encode(f"{client_id}:nope".encode()).decode()
    reply = requests.post(
        metadata["token_endpoint"],
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
        timeout=HTTP_TIMEOUT_S,
    )
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"].lower().startswith("basic")
    assert reply.json()["error"] == "invalid_client"


def key_client(admin) -> tuple[str, ECKey]:
    """A private_key_jwt client whose registered jwks holds the public half of a fresh P-256 key."""
    key = ECKey.generate_key("P-256", parameters={"kid": unique("k"), "alg": "ES256", "use": "sig"})
    public = key.as_dict(private=False)
    assert "d" not in public
    client, secret = admin.create_client(
        client_id=unique("signer"),
        name="authlib signer",
        token_endpoint_auth_method="private_key_jwt",
        grant_types=["client_credentials"],
        allowed_scopes=[SCOPE],
        jwks={"keys": [public]},
    )
    assert secret is None, "a private_key_jwt client has no secret"
    return client["client_id"], key


def test_private_key_jwt(argus, admin, metadata):
    client_id, key = key_client(admin)
    session = OAuth2Session(client_id, key, token_endpoint_auth_method="private_key_jwt", scope=SCOPE)
    session.register_client_auth_method(PrivateKeyJWT(metadata["token_endpoint"], alg="ES256"))
    token = session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials", timeout=HTTP_TIMEOUT_S)

    assert token["token_type"].lower() == "bearer"
    assert "refresh_token" not in token
    claims = verified_claims(argus, metadata, token["access_token"])
    assert claims["sub"] == client_id
    assert claims["scope"] == SCOPE

    # Every assertion authlib signs has a fresh jti: a second token request works too.
    again = session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials", timeout=HTTP_TIMEOUT_S)
    assert again["access_token"] != token["access_token"]


def assertion_request(token_endpoint: str, client_id: str, assertion: str) -> requests.Response:
    return requests.post(
        token_endpoint,
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
        timeout=HTTP_TIMEOUT_S,
    )


def test_private_key_jwt_assertion_is_single_use(admin, metadata):
    """RFC 7523 §3 item 7: the same assertion (same jti) presented twice is refused the second time."""
    client_id, key = key_client(admin)
    assertion = private_key_jwt_sign(key, client_id, metadata["token_endpoint"], alg="ES256")
    first = assertion_request(metadata["token_endpoint"], client_id, assertion)
    assert first.status_code == 200, first.text
    replay = assertion_request(metadata["token_endpoint"], client_id, assertion)
    assert replay.status_code == 401, replay.text
    assert replay.json()["error"] == "invalid_client"


def test_private_key_jwt_refusals(admin, metadata):
    client_id, key = key_client(admin)
    stranger = ECKey.generate_key("P-256", parameters={"alg": "ES256"})
    session = OAuth2Session(client_id, stranger, token_endpoint_auth_method="private_key_jwt", scope=SCOPE)
    session.register_client_auth_method(PrivateKeyJWT(metadata["token_endpoint"], alg="ES256"))
    with pytest.raises(OAuthError) as refused:
        session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials", timeout=HTTP_TIMEOUT_S)
    assert refused.value.error == "invalid_client", "an assertion signed by a key the client did not register"

    # An assertion for another audience (RFC 7523 §3 item 3), signed by the right key.
    elsewhere = private_key_jwt_sign(key, client_id, "https://elsewhere.example/token", alg="ES256")
    reply = assertion_request(metadata["token_endpoint"], client_id, elsewhere)
    assert reply.status_code == 401
    assert reply.json()["error"] == "invalid_client"
