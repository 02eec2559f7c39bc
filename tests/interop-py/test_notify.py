"""Notices delivered by the real `argus` binary to servers nobody here wrote.

- SMTP: aiosmtpd (the asyncio SMTP server of the aio-libs project) on 127.0.0.1 receives the new-device e-mail of a
  sign-in through the real login form: the user's address, the subject, the device and IP, and nothing secret.
- Webhook: a local HTTP receiver checks every message with `standardwebhooks`, the Standard Webhooks project's own
  Python library, and fails the first delivery with 500: the notice comes again, with the same id, and is accepted.
"""

from __future__ import annotations

import email
import email.policy
import html
import json
import re
import secrets
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urljoin

import pytest
import requests
from aiosmtpd.controller import Controller
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from standardwebhooks import Webhook

from conftest import CONFIG_TOML, HTTP_TIMEOUT_S, start_argus

HIDDEN_INPUT = re.compile(r'<input type="hidden" name="([^"]*)" value="([^"]*)">')
USERS_LINE = re.compile(r"^\s+users\s.*password:\s+(\S+)\s*$", re.MULTILINE)
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SECRET = "whsec_" + __import__("base64").b64encode(secrets.token_bytes(32)).decode()
ADDRESS = "alice@example.test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """aiosmtpd handler: keeps every message it is handed."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


class Hooks:
    """Webhook receiver: answers 500 to the first request, then 204; verifies each with standardwebhooks."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        verifier = Webhook(SECRET)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["content-length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    payload = verifier.verify(body, headers)
                    valid = True
                except Exception as e:  # the library raises WebhookVerificationError
                    payload, valid = repr(e), False
                outer.requests.append({"id": headers.get("webhook-id"), "valid": valid, "payload": payload})
                self.send_response(500 if len(outer.requests) == 1 else 204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def setup():
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    hooks = Hooks()
    config = CONFIG_TOML + f"""[notify]
webhook_url = "{hooks.url}"
webhook_secret = "{SECRET}"
retry_base_ms = 200
retry_max_ms = 400
poll_ms = 50
[notify.smtp]
host = "127.0.0.1"
port = {smtp.port}
from = "Argus <argus@example.test>"
tls = "none"
"""
    argus = start_argus(config)
    try:
        yield argus, inbox, hooks
    finally:
        argus.stop()
        smtp.stop()
        hooks.server.shutdown()


def admin_session(argus) -> requests.Session:
    token = requests.post(
        f"{argus.issuer}/token",
        data={"grant_type": "client_credentials", "scope": "argus:admin"},
        auth=(argus.admin_client_id, argus.admin_client_secret),
        timeout=HTTP_TIMEOUT_S,
    )
    assert token.status_code == 200, token.text
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    return session


def sign_in(argus, password: str) -> tuple[requests.Session, dict]:
    """A new browser (Firefox on Linux) through the login form and consent page; the browser and its tokens."""
    metadata = requests.get(f"{argus.issuer}/.well-known/openid-configuration", timeout=HTTP_TIMEOUT_S).json()
    redirect_uri = "http://127.0.0.1:9/callback"
    client = OAuth2Session(
        "demo-app", redirect_uri=redirect_uri, scope="openid accounts:read", token_endpoint_auth_method="none",
        code_challenge_method="S256",
    )
    verifier = generate_token(48)
    url, _ = client.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier)
    browser = requests.Session()
    browser.headers["User-Agent"] = FIREFOX
    page = browser.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT_S)
    assert page.status_code == 200, page.text
    fields = {html.unescape(k): html.unescape(v) for k, v in HIDDEN_INPUT.findall(page.text)}
    fields.update(username="alice", password=password)
    reply = browser.post(urljoin(argus.issuer, "/login"), data=fields, allow_redirects=False, timeout=HTTP_TIMEOUT_S)
    if reply.status_code == 200:
        fields = {html.unescape(k): html.unescape(v) for k, v in HIDDEN_INPUT.findall(reply.text)}
        fields["decision"] = "allow"
        reply = browser.post(urljoin(argus.issuer, "/consent"), data=fields, allow_redirects=False,
                             timeout=HTTP_TIMEOUT_S)
    assert reply.status_code == 303, reply.text
    tokens = client.fetch_token(metadata["token_endpoint"], authorization_response=reply.headers["location"],
                                code_verifier=verifier, timeout=HTTP_TIMEOUT_S)
    return browser, tokens


def wait_for(what: str, predicate, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_new_device_notice_by_smtp_and_signed_webhook(setup):
    argus, inbox, hooks = setup
    password = USERS_LINE.search("".join(argus.stdout)).group(1)
    reply = admin_session(argus).patch(f"{argus.issuer}/admin/v1/users/alice", json={"email": ADDRESS},
                                       timeout=HTTP_TIMEOUT_S)
    assert reply.status_code == 200, reply.text

    browser, tokens = sign_in(argus, password)

    # The e-mail: to the user's address, about the new device, with where and what, and nothing secret.
    wait_for("the new-device e-mail", lambda: len(inbox.messages) >= 2)  # and the first grant's
    mails = [(rcpt, raw, email.message_from_bytes(raw, policy=email.policy.default)) for rcpt, raw in inbox.messages]
    assert {m["Subject"] for _, _, m in mails} == {"New sign-in to your account",
                                                  "You gave an app access to your account"}
    rcpt, raw, mail = next(m for m in mails if m[2]["Subject"] == "New sign-in to your account")
    assert rcpt == [ADDRESS]
    assert mail["To"] == ADDRESS
    assert mail["From"] == "Argus <argus@example.test>"
    assert mail["Message-ID"].startswith("<")
    text = mail.get_content()
    assert "Firefox on Linux" in text and "127.0.0.1" in text, text
    for secret in [password, tokens["access_token"], tokens["refresh_token"], *browser.cookies.values()]:
        assert secret not in raw.decode("utf-8", "replace")

    # The webhook: one message per notice (new device, first grant); the first refused once and delivered again
    # with the same id; every message verifies with the library.
    wait_for("the webhook retry", lambda: len(hooks.requests) >= 3)
    time.sleep(0.6)
    got = hooks.requests
    assert len(got) == 3, got
    assert all(r["valid"] for r in got), got
    assert [r["id"] for r in got[1:]].count(got[0]["id"]) == 1, "the retry keeps the delivery id"
    assert len({r["id"] for r in got}) == 2
    payload = next(r["payload"] for r in got if r["payload"]["type"] == "account.new_device")
    assert payload["data"]["device"] == "Firefox on Linux"
    assert payload["data"]["ip"] == "127.0.0.1"
    assert {r["payload"]["type"] for r in got} == {"account.new_device", "account.first_grant"}
    for r in got:
        assert password not in json.dumps(r["payload"])

    # A message the library must refuse: the signature of another secret.
    forged = Webhook("whsec_" + __import__("base64").b64encode(b"x" * 32).decode())
    with pytest.raises(Exception):
        forged.verify(json.dumps(payload), {"webhook-id": "m", "webhook-timestamp": str(int(time.time())),
                                            "webhook-signature": "v1,AAAA"})
