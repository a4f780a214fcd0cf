"""Contract test: the sandbox answers as the project's OpenAPI file says.

Schemathesis generates schema-valid requests for every operation of
``vps-org-openapi.yaml`` (a verbatim copy of ``shared/spec/``) and checks each
answer against it: documented status codes and content types, bodies that
match their schemas, 401 without the token, 405 for undocumented methods. It
runs derandomized with at most 50 examples per operation.

Two corrections are made to the file in memory, because as written it
contradicts DRF's documented error shapes that the sandbox must produce:

- ``BadRequest`` is a ``oneOf`` of ``Detail`` and ``FieldErrors``, but
  ``Detail`` requires nothing, so every field-error body matches both and
  fails ``oneOf``; ``Detail`` here requires ``detail``.
- A 400 may be a bare JSON list (``["Server is already running."]``), which
  the file does not allow; it is added as a third shape.

The ``positive_data_acceptance`` check is off: the file cannot express the
provider's semantic validation (name length, FQDN hostnames, existing plan
ids, known locations), so schema-valid requests are rightly refused with 400.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings

from vpsbot.vps.sandbox import Sandbox, SandboxServer

logger = logging.getLogger(__name__)

SPEC = Path(__file__).with_name("vps-org-openapi.yaml")
CONTRACT_TOKEN = "contract-token"


def _corrected_spec() -> dict[str, Any]:
    document = yaml.safe_load(SPEC.read_text())
    components = document["components"]
    components["schemas"]["Detail"]["required"] = ["detail"]
    shapes = components["responses"]["BadRequest"]["content"]["application/json"]
    shapes["schema"]["oneOf"].append({"type": "array", "items": {"type": "string"}})
    return document


schema = schemathesis.openapi.from_dict(
    _corrected_spec(),
    config=schemathesis.Config.from_dict(
        {
            "seed": 20250110,
            "generation": {"mode": "positive", "max-examples": 50},
            "checks": {"positive_data_acceptance": {"enabled": False}},
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": False},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
        }
    ),
)


@pytest.fixture(scope="module")
def contract_server() -> Iterator[SandboxServer]:
    sandbox = Sandbox(CONTRACT_TOKEN, transition_delay=0.5)
    # Small ids, in every state, so generated ids often hit a real server.
    for server_id, status in enumerate(
        ["active", "stopped", "provisioning", "suspended", "rebooting", "active"]
    ):
        sandbox.add_server(f"c-{server_id}", status=status, server_id=server_id)
    with SandboxServer(sandbox) as server:
        yield server


@schema.parametrize()
@settings(
    max_examples=50,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_sandbox_conforms_to_the_openapi_file(
    case: schemathesis.Case, contract_server: SandboxServer
) -> None:
    case.call_and_validate(
        base_url=contract_server.url.rstrip("/"),
        headers={"Authorization": f"Bearer {CONTRACT_TOKEN}"},
    )
