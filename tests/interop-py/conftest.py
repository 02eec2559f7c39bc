"""Fixtures of the Python interop tests: the real `argus` binary, its admin API, and its metadata.

The binary is $ARGUS_BIN, else target/debug/argus of this repository. It runs `argus up --demo` with every listener on
127.0.0.1:0 and a fresh data directory, so runs never collide with each other or with a developer's `argus up`.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

# authlib refuses plain-http endpoints unless told otherwise; everything here is on the loopback interface.
os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")

ROOT = Path(__file__).resolve().parents[2]
ARGUS_BIN = os.environ.get("ARGUS_BIN") or str(ROOT / "target" / "debug" / "argus")
STARTUP_TIMEOUT_S = 30
HTTP_TIMEOUT_S = 10
PART_LINE = re.compile(r"^\s+(issuer|gate|watch|demo-api|metrics)\s+(http://\S+)", re.MULTILINE)
PARTS = ("issuer", "gate", "watch", "demo-api", "metrics")
# `argus up --demo` creates the admin client `argus-admin` with a new secret and prints it in its banner, once.
ADMIN_LINE = re.compile(r"^\s+admin\s+(\S+)\s.*secret:\s+(\S+)\s*$", re.MULTILINE)
CONFIG_TOML = """[issuer]
listen = "127.0.0.1:0"
[gate]
listen = "127.0.0.1:0"
[watch]
listen = "127.0.0.1:0"
[demo]
listen = "127.0.0.1:0"
[metrics]
listen = "127.0.0.1:0"
"""


@dataclass
class Argus:
    """A running `argus up --demo`."""

    process: subprocess.Popen
    tmp: Path
    urls: dict[str, str] = field(default_factory=dict)
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    admin_client_id: str = ""
    admin_client_secret: str = ""

    @property
    def issuer(self) -> str:
        return self.urls["issuer"]

    def output(self) -> str:
        return "--- argus stdout ---\n{}\n--- argus stderr (last 20000 chars) ---\n{}".format(
            "".join(self.stdout), "".join(self.stderr)[-20_000:]
        )

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if argus is still running after 5 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def _pump(stream, sink: list[str]) -> None:
    for line in iter(stream.readline, ""):
        sink.append(line)
    stream.close()


def start_argus(config_toml: str = CONFIG_TOML) -> Argus:
    """`argus up --demo` with `config_toml` (a test that needs more config appends to CONFIG_TOML)."""
    tmp = Path(tempfile.mkdtemp(prefix="argus-interop-py-"))
    config = tmp / "argus.toml"
    config.write_text(config_toml)
    data_dir = tmp / "data"
    password = os.urandom(16).hex()
    try:
        process = subprocess.Popen(
            [ARGUS_BIN, "up", "--demo", "--data-dir", str(data_dir), "--demo-password", password, "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    argus = Argus(process=process, tmp=tmp)
    for stream, sink in ((process.stdout, argus.stdout), (process.stderr, argus.stderr)):
        threading.Thread(target=_pump, args=(stream, sink), daemon=True).start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        banner = "".join(argus.stdout)
        for part, url in PART_LINE.findall(banner):
            argus.urls[part] = url.rstrip("/")
        admin = ADMIN_LINE.search(banner)
        if all(p in argus.urls for p in PARTS) and admin:
            argus.admin_client_id, argus.admin_client_secret = admin.groups()
            return argus
        if process.poll() is not None:
            break
        time.sleep(0.025)
    argus.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    raise RuntimeError(f"argus did not start (exit {process.poll()})\n{argus.output()}")


@pytest.fixture(scope="session")
def argus():
    instance = start_argus()
    yield instance
    instance.stop()
    shutil.rmtree(instance.tmp, ignore_errors=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failing test, show what argus printed (once is enough to debug; later failures repeat it)."""
    report = yield
    if report.failed and "argus" in item.funcargs:
        report.sections.append(("argus output", item.funcargs["argus"].output()))
    return report


@pytest.fixture(scope="session")
def metadata(argus) -> dict:
    """RFC 8414 authorization server metadata."""
    reply = requests.get(f"{argus.issuer}/.well-known/oauth-authorization-server", timeout=HTTP_TIMEOUT_S)
    reply.raise_for_status()
    return reply.json()


@dataclass
class AdminApi:
    """Argus's admin API (`/admin/v1`), called with an `argus:admin` token of the bootstrap admin client."""

    issuer: str
    session: requests.Session

    def create_client(self, **registration) -> tuple[dict, str | None]:
        """POST /admin/v1/clients; the stored client and its secret (shown once; None without one)."""
        reply = self.session.post(f"{self.issuer}/admin/v1/clients", json=registration, timeout=HTTP_TIMEOUT_S)
        assert reply.status_code == 201, f"creating client {registration}: {reply.status_code} {reply.text}"
        body = reply.json()
        return body["client"], body.get("client_secret")


@pytest.fixture(scope="session")
def admin(argus, metadata) -> AdminApi:
    """The admin API, authenticated the way `argus admin` does it: authlib client credentials, client_secret_basic."""
    from authlib.integrations.requests_client import OAuth2Session

    client = OAuth2Session(
        argus.admin_client_id,
        argus.admin_client_secret,
        token_endpoint_auth_method="client_secret_basic",
        scope="argus:admin",
    )
    token = client.fetch_token(metadata["token_endpoint"], grant_type="client_credentials", timeout=HTTP_TIMEOUT_S)
    assert "argus:admin" in token["scope"].split()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token['access_token']}"
    return AdminApi(issuer=argus.issuer, session=session)
