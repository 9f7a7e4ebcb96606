"""The OpenAPI 3.0 document served at ``GET /openapi.json``.

Written by hand from the routes in :mod:`streampay_incident.web.app` so it
says exactly what the endpoints accept; the schemathesis run in the tests
holds the app to it (malformed input of every kind gets a 4xx, never a 5xx).
"""

from __future__ import annotations

from typing import Any, get_args

from ..__about__ import __version__
from ..checks.verdict_facts import COUNTED_ACTIONS
from ..io import payouts, settlements
from ..model import SettlementAction, SettlementState

_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}},
    "required": ["error"],
}

_PROBLEMS = {
    "type": "object",
    "properties": {
        "error": {"type": "string"},
        "problems": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "index": {"type": "integer", "nullable": True},
                    "line": {"type": "integer", "nullable": True},
                    "parameter": {"type": "string", "nullable": True},
                    "field": {"type": "string", "nullable": True},
                    "message": {"type": "string"},
                },
                "required": ["message"],
            },
        },
    },
    "required": ["error", "problems"],
}

_FINDING = {
    "type": "object",
    "properties": {
        "code": {"type": "string"},
        "severity": {"type": "string", "enum": ["info", "warning", "critical"]},
        "subject": {"type": "string"},
        "summary": {"type": "string"},
        "evidence": {"type": "object"},
        "runbook": {"type": "string"},
    },
    "required": ["code", "severity", "subject", "summary", "evidence", "runbook"],
}

_REPORT = {
    "type": "object",
    "description": "The streampay-incident.report/v1 document the CLI prints with --format json.",
    "properties": {
        "schema": {"type": "string", "enum": ["streampay-incident.report/v1"]},
        "status": {"type": "string", "enum": ["pass", "warn", "fail"]},
        "generated_at": {"type": "string"},
        "tool": {"type": "object"},
        "inputs": {"type": "object"},
        "findings": {"type": "array", "items": {"$ref": "#/components/schemas/Finding"}},
        "summary": {
            "type": "object",
            "description": "Settlement reports: how many verdicts call for each action.",
            "properties": {
                "actions": {
                    "type": "object",
                    "properties": {a: {"type": "integer", "minimum": 0} for a in COUNTED_ACTIONS},
                    "required": list(COUNTED_ACTIONS),
                }
            },
        },
        "notes": {"type": "array", "items": {"type": "string"}},
        "settlements": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "settlement_id": {"type": "string"},
                    "state": {"type": "string", "enum": list(get_args(SettlementState))},
                    "retry_safe": {"type": "boolean"},
                    "retry_reason": {"type": "string"},
                    "action": {"type": "string", "enum": list(get_args(SettlementAction))},
                },
                "required": ["settlement_id", "state", "retry_safe", "retry_reason", "action"],
            },
        },
    },
    "required": ["schema", "status", "generated_at", "tool", "inputs", "findings"],
}

_SCALAR = {"oneOf": [{"type": "string"}, {"type": "number"}, {"type": "integer"}]}

_PAYOUT = {
    "type": "object",
    "description": "A payout record as pinned for the CLI's payout exports.",
    "properties": {
        "payout_id": {"type": "string"},
        "settlement_id": {"type": "string"},
        "destination": {"type": "string"},
        "asset": {"type": "string"},
        "amount": _SCALAR,
        "status": {"type": "string", "enum": list(payouts.STATUSES)},
        "tx_hash": {"type": "string"},
        "memo_type": {"type": "string", "enum": list(payouts.MEMO_TYPES)},
        "memo": _SCALAR,
        "idempotency_key": {"type": "string"},
        "created_at": {"type": "string"},
        "ledger": _SCALAR,
    },
    "required": list(payouts.REQUIRED_FIELDS),
}

_SETTLEMENT = {
    "type": "object",
    "description": "A settlement_outbox record as pinned for the CLI's settlement exports.",
    "properties": {
        "settlement_id": {"type": "string"},
        "status": {"type": "string", "enum": list(settlements.STATUSES)},
        "created_at": {"type": "string"},
        "updated_at": {"type": "string"},
        "attempts": _SCALAR,
        "max_attempts": _SCALAR,
        "lease_until": {"type": "string"},
        "tx_hash": {"type": "string"},
        "envelope_xdr": {"type": "string"},
        "tx_max_time": _SCALAR,
        "last_error": {"type": "string"},
    },
    "required": list(settlements.REQUIRED),
}


def _records_body(
    kind: str, schema_ref: str, beside: dict[str, Any] | None = None, note: str = ""
) -> dict[str, Any]:
    array = {"type": "array", "items": {"$ref": schema_ref}}
    return {
        "required": True,
        "description": f"A JSON array of {kind}, an object holding it under {kind!r}, "
        f"or JSON Lines (one record per line).{note}",
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        array,
                        {
                            "type": "object",
                            "properties": {kind: array, **(beside or {})},
                            "required": [kind],
                        },
                    ]
                }
            },
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }


def _report_responses() -> dict[str, Any]:
    return {
        "200": {
            "description": "The triage report (Markdown with ?format=markdown).",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Report"}},
                "text/markdown": {"schema": {"type": "string"}},
            },
        },
        "404": _NOT_FOUND,
        "413": {
            "description": "Body over the configured limit (default 8 MiB).",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        },
        "422": {
            "description": "Invalid records or parameters, each naming its index/line and field.",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problems"}}},
        },
    }


_NOT_FOUND = {
    "description": "Unknown path, unknown settlement, or any authentication failure "
    "(deliberately indistinguishable).",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}

_FORMAT = {
    "name": "format",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "enum": ["json", "markdown"]},
}
_NOW = {
    "name": "now",
    "in": "query",
    "required": False,
    "description": "Evaluate as of this RFC 3339 time (replaying an incident).",
    "schema": {"type": "string"},
}


def openapi_document(root_path: str = "") -> dict[str, Any]:
    """The OpenAPI 3.0.3 document; ``servers`` points at the mount prefix."""
    json_ok = {"content": {"application/json": {"schema": {"type": "object"}}}}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "streampay-incident internal endpoints",
            "version": __version__,
            "description": (
                "Read-only incident triage. Every route except /livez needs a "
                "streampay-hmac-v1 signature (x-streampay-service-name, -key-id, -timestamp, "
                "-content-sha256, -signature: v1=...); /metrics also accepts "
                "Authorization: Bearer <STREAMPAY_INCIDENT_METRICS_TOKEN>. Any authentication "
                "failure answers 404."
            ),
        },
        "servers": [{"url": root_path or "/"}],
        "security": [{"streampayHmac": []}],
        "paths": {
            "/livez": {
                "get": {
                    "summary": "The process is up (for kubelet; no authentication).",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/health": {
                "get": {
                    "summary": "Chain health (draft-inadarei-api-health-check); "
                    "not a liveness probe.",
                    "responses": {
                        "200": {
                            "description": "pass or warn",
                            "content": {"application/health+json": {"schema": {"type": "object"}}},
                        },
                        "503": {
                            "description": "fail",
                            "content": {"application/health+json": {"schema": {"type": "object"}}},
                        },
                        "404": _NOT_FOUND,
                    },
                }
            },
            "/checks": {
                "get": {
                    "summary": "Every finding code and the loaded plugins with versions.",
                    "responses": {
                        "200": {"description": "codes and plugins", **json_ok},
                        "404": _NOT_FOUND,
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus text exposition of the streampay_incident_* series.",
                    "security": [{"streampayHmac": []}, {"metricsBearer": []}],
                    "responses": {
                        "200": {
                            "description": "metrics",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        "404": _NOT_FOUND,
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document.",
                    "responses": {
                        "200": {"description": "OpenAPI 3.0", **json_ok},
                        "404": _NOT_FOUND,
                    },
                }
            },
            "/settlements/{settlement_id}": {
                "get": {
                    "summary": "The verdict for one settlement, looked up by the host's "
                    "streampay_incident_find_settlement hook.",
                    "parameters": [
                        {
                            "name": "settlement_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        _FORMAT,
                    ],
                    "responses": _report_responses(),
                }
            },
            "/triage/payouts": {
                "post": {
                    "summary": "Triage payout records (double payouts).",
                    "parameters": [
                        _FORMAT,
                        _NOW,
                        {
                            "name": "repeat_window",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "example": "10m"},
                        },
                    ],
                    "requestBody": _records_body("payouts", "#/components/schemas/Payout"),
                    "responses": _report_responses(),
                }
            },
            "/triage/settlements": {
                "post": {
                    "summary": "Triage settlement records (stuck settlements, retry safety).",
                    "parameters": [
                        _FORMAT,
                        _NOW,
                        {
                            "name": "network",
                            "in": "query",
                            "required": False,
                            "description": "public, testnet or a passphrase (for envelope_xdr).",
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "latest_ledger_close_time",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string"},
                        },
                    ],
                    "requestBody": _records_body(
                        "settlements",
                        "#/components/schemas/Settlement",
                        beside={
                            "payouts": {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/Payout"},
                            }
                        },
                        note=" The object may also hold the payouts export under 'payouts': "
                        "a settlement another payout already paid is never retry-safe.",
                    ),
                    "responses": _report_responses(),
                }
            },
        },
        "components": {
            "securitySchemes": {
                "streampayHmac": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "x-streampay-signature",
                    "description": "streampay-hmac-v1: see docs/web.md.",
                },
                "metricsBearer": {"type": "http", "scheme": "bearer"},
            },
            "schemas": {
                "Error": _ERROR,
                "Problems": _PROBLEMS,
                "Finding": _FINDING,
                "Report": _REPORT,
                "Payout": _PAYOUT,
                "Settlement": _SETTLEMENT,
            },
        },
    }
