"""Schemathesis, unmodified, against the demo API's OpenAPI file through the real gate.

The gate route's upstream is a recording server written here, answering what the spec declares. Schemathesis
generates valid (positive) and invalid (negative) calls for every operation, with a deterministic seed; the gate
must:

- never answer 5xx itself (the recording upstream never does),
- let through only requests that the spec allows, judged by openapi-core (python-jsonschema underneath), not by
  Argus's own validator,
- refuse every negative call with 4xx before the upstream,
- pass the valid calls on, and their answers too (the route checks responses with `responses = "block"`, so an
  answer the gate wrongly judged undeclared would come back 502).
"""

from __future__ import annotations

import json
import re
import shutil
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import hypothesis
import hypothesis.errors
import pytest
import requests
import schemathesis
import yaml
from authlib.integrations.requests_client import OAuth2Session
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.validation.request.validators import V31RequestBodyValidator, V31RequestParametersValidator
from schemathesis import GenerationMode
from werkzeug.datastructures import Headers, ImmutableMultiDict

from conftest import CONFIG_TOML, HTTP_TIMEOUT_S, ROOT, AdminApi, start_argus

SPEC = ROOT / "crates" / "argus-demo" / "openapi.yaml"
SCOPES = ["accounts:read", "transfers:read", "transfers:write"]
# Examples per operation and mode: enough variety to find a hole, few enough for well under a minute.
EXAMPLES = 50
ACCOUNT = {"id": 1, "owner": "alice", "name": "Current", "number": "ARGUS-DEMO-000001", "currency": "EUR", "balance": 0}
TRANSFER = {
    "id": 1,
    "from_account": 1,
    "to_account": 2,
    "amount": 100,
    "currency": "EUR",
    "memo": "",
    "created_at": "2024-01-01T00:00:00Z",
}


@dataclass
class Recorded:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Recorder:
    """What reached the upstream, by the gate's x-request-id."""

    requests: dict[str, Recorded] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def answer_for(method: str, path: str) -> tuple[int, str, bytes]:
    """A plausible answer that matches the spec, so response checking has nothing to withhold."""
    parts = [p for p in path.split("/") if p]
    if parts == ["health"]:
        return 200, "application/json", b'{"status":"ok"}'
    if parts == ["openapi.yaml"]:
        return 200, "application/yaml", SPEC.read_bytes()
    if parts == ["accounts"] or (len(parts) == 3 and parts[2] == "transfers"):
        return 200, "application/json", b"[]"
    if parts[:1] == ["accounts"]:
        return 200, "application/json", json.dumps(ACCOUNT).encode()
    if method == "POST":
        return 201, "application/json", json.dumps(TRANSFER).encode()
    return 200, "application/json", json.dumps(TRANSFER).encode()


def recording_upstream(recorder: Recorder) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def handle_one(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            seen = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            with recorder.lock:
                recorder.requests[self.headers.get("x-request-id", "")] = seen
            status, content_type, payload = answer_for(self.command, urlsplit(self.path).path)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            if status == 201:
                self.send_header("Location", "/transfers/1")
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_one

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass
class Setup:
    gate: str
    token: str
    recorder: Recorder


def gate_spec(folder: Path) -> Path:
    """The demo spec for the gate route, less `x-argus-step-up`: a client-credentials token has no sign-in to be
    recent, so step-up would refuse every transfer before validation (step-up has its own tests)."""
    spec = yaml.safe_load(SPEC.read_text())
    for item in spec["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict):
                operation.pop("x-argus-step-up", None)
    path = folder / "demo-openapi.json"
    path.write_text(json.dumps(spec))
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    recorder = Recorder()
    upstream = recording_upstream(recorder)
    spec = gate_spec(tmp_path_factory.mktemp("spec"))
    route = f"""
[[gate.routes]]
name = "recorded"
prefix = "/"
upstream = "http://127.0.0.1:{upstream.server_address[1]}"
auth = "argus"
openapi = {json.dumps(str(spec))}
responses = "block"
"""
    argus = start_argus(CONFIG_TOML + route)
    try:
        yield Setup(gate=argus.urls["gate"], token=service_token(argus), recorder=recorder)
    finally:
        argus.stop()
        shutil.rmtree(argus.tmp, ignore_errors=True)
        upstream.shutdown()


def service_token(argus) -> str:
    """A client-credentials token with every scope of the demo API, got with authlib."""
    metadata = requests.get(f"{argus.issuer}/.well-known/oauth-authorization-server", timeout=HTTP_TIMEOUT_S).json()
    admin_session = OAuth2Session(
        argus.admin_client_id, argus.admin_client_secret, token_endpoint_auth_method="client_secret_basic"
    )
    admin_token = admin_session.fetch_token(
        metadata["token_endpoint"], grant_type="client_credentials", scope="argus:admin", timeout=HTTP_TIMEOUT_S
    )
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {admin_token['access_token']}"
    client, secret = AdminApi(issuer=argus.issuer, session=session).create_client(
        client_id="schemathesis",
        name="schemathesis",
        token_endpoint_auth_method="client_secret_basic",
        grant_types=["client_credentials"],
        allowed_scopes=SCOPES,
    )
    service = OAuth2Session(client["client_id"], secret, token_endpoint_auth_method="client_secret_basic")
    token = service.fetch_token(
        metadata["token_endpoint"], grant_type="client_credentials", scope=" ".join(SCOPES), timeout=HTTP_TIMEOUT_S
    )
    return token["access_token"]


def generated_cases(operation, mode: GenerationMode) -> list:
    """Up to EXAMPLES cases of one operation, the same ones every run (hypothesis derandomized)."""
    cases = []

    @hypothesis.settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(operation.as_strategy(generation_mode=mode))
    def collect(case):
        cases.append(case)

    try:
        collect()
    except hypothesis.errors.Unsatisfiable:
        pass  # nothing in this operation can be made invalid (no parameters, no body)
    return cases


class RecordedRequest:
    """A recorded request in openapi-core's request protocol, its query kept exactly (blank values too)."""

    def __init__(self, recorded: Recorded, server: str):
        target = urlsplit(recorded.target)
        self.host_url = server
        self.path = target.path
        self.method = recorded.method.lower()
        self.body = recorded.body or None
        self.content_type = recorded.headers.get("content-type", "")
        query = parse_qsl(target.query, keep_blank_values=True)
        self.query_names = [name for name, _ in query]
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(query), header=Headers(recorded.headers), cookie=ImmutableMultiDict()
        )


def spec_violations(openapi: OpenAPI, spec: dict, recorded: Recorded) -> list[str]:
    """Why openapi-core (and the spec's list of query parameters) would not let this request through."""
    server = spec["servers"][0]["url"]
    request = RecordedRequest(recorded, server)
    problems = []
    for validator in (V31RequestParametersValidator, V31RequestBodyValidator):
        validator_instance = validator(openapi.spec)
        problems.extend(f"{type(e).__name__}: {e}" for e in validator_instance.iter_errors(request))
    # openapi-core ignores query parameters the operation does not declare; strict mode refuses them.
    declared = declared_query_names(spec, request.path, request.method)
    problems.extend(f"undeclared query parameter {n!r}" for n in request.query_names if n not in declared)
    return problems


def declared_query_names(spec: dict, path: str, method: str) -> set[str]:
    """The query parameters the operation matching `path` and `method` declares."""
    names = set()
    for template, item in spec["paths"].items():
        pattern = "/".join("[^/]+" if seg.startswith("{") else re.escape(seg) for seg in template.split("/"))
        if re.fullmatch(pattern, path) and method in item:
            for param in item.get("parameters", []) + item[method].get("parameters", []):
                param = resolve(spec, param)
                if param["in"] == "query":
                    names.add(param["name"])
    return names


def resolve(spec: dict, node: dict) -> dict:
    """Follow local `$ref`s."""
    while "$ref" in node:
        target = spec
        for key in node["$ref"].removeprefix("#/").split("/"):
            target = target[key]
        node = target
    return node


@dataclass
class Outcome:
    mode: str
    label: str
    status: int
    forwarded: bool
    case: str


def test_schemathesis_through_the_gate(setup):
    spec = yaml.safe_load(SPEC.read_text())
    openapi = OpenAPI.from_file_path(str(SPEC))
    schema = schemathesis.openapi.from_path(SPEC)
    auth = {"Authorization": f"Bearer {setup.token}"}
    outcomes: list[Outcome] = []
    unsendable = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for case in generated_cases(operation, mode):
                try:
                    reply = case.call(base_url=setup.gate, headers=auth, timeout=HTTP_TIMEOUT_S)
                except (requests.exceptions.InvalidHeader, UnicodeError, ValueError):
                    unsendable += 1  # e.g. a negative header value that `requests` will not put on the wire
                    continue
                request_id = (reply.headers.get("x-request-id") or [""])[0]  # lower-case names, list values
                with setup.recorder.lock:
                    forwarded = request_id in setup.recorder.requests
                outcomes.append(Outcome(mode.value, operation.label, reply.status_code, forwarded, repr(case)))

    positive = [o for o in outcomes if o.mode == "positive"]
    negative = [o for o in outcomes if o.mode == "negative"]
    print(f"{len(positive)} positive and {len(negative)} negative calls; {unsendable} could not be sent")
    assert len(positive) >= 100 and len(negative) >= 50, (len(positive), len(negative))

    server_errors = [o for o in outcomes if o.status >= 500]
    assert not server_errors, f"the gate answered 5xx: {server_errors[:5]}"

    let_through = [o for o in negative if o.forwarded or not 400 <= o.status < 500]
    assert not let_through, f"invalid calls not refused with 4xx before the upstream: {let_through[:5]}"

    refused_valid = [o for o in positive if not o.forwarded]
    assert not refused_valid, f"valid calls the gate refused: {refused_valid[:5]}"

    with setup.recorder.lock:
        recorded = list(setup.recorder.requests.values())
    assert len(recorded) == len(positive)
    invalid = [(r.method, r.target, p) for r in recorded if (p := spec_violations(openapi, spec, r))]
    assert not invalid, f"the upstream received requests the spec does not allow: {invalid[:5]}"


def test_the_independent_judge_is_not_blind():
    """The checks above would pass vacuously if openapi-core accepted anything: it must see these as invalid."""
    spec = yaml.safe_load(SPEC.read_text())
    openapi = OpenAPI.from_file_path(str(SPEC))
    def transfer(**fields) -> Recorded:
        body = {"from_account": 1, "to_account": 2, "amount": 5, "currency": "EUR", **fields}
        return Recorded("POST", "/transfers", {"content-type": "application/json"}, json.dumps(body).encode())

    assert spec_violations(openapi, spec, transfer()) == []
    for bad in (
        transfer(amount=0),
        transfer(currency="XXX"),
        transfer(fee=0),
        Recorded("GET", "/accounts/1/transfers?limit=101", {}, b""),
        Recorded("GET", "/accounts/1/transfers?limit=5&debug=1", {}, b""),
        Recorded("GET", "/accounts/x", {}, b""),
    ):
        assert spec_violations(openapi, spec, bad), bad
