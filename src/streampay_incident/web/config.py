"""The web app's settings, read once from the environment at the shell.

The names are the ones StreamPay already uses for its internal routes
(``INTERNAL_SERVICE_HMAC_KEYS``, ``INTERNAL_SERVICE_CLOCK_SKEW_SECONDS``) plus
the tool's own ``STREAMPAY_INCIDENT_*`` variables. Secrets never appear in a
``repr`` or in an error message.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

import attrs

from .. import envvars
from ..auth import DEFAULT_CLOCK_SKEW_SECONDS, key_table
from ..stellar.networks import resolve_network

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_HEALTH_TTL_SECONDS = 5.0
DEFAULT_PROBE_TIMEOUT_SECONDS = 5.0
DEFAULT_REQUEST_TIMEOUT_SECONDS = 10.0

ENV_KEYS = "INTERNAL_SERVICE_HMAC_KEYS"
ENV_SKEW = "INTERNAL_SERVICE_CLOCK_SKEW_SECONDS"
ENV_ALLOWED = "STREAMPAY_INCIDENT_ALLOWED_SERVICES"
ENV_METRICS_TOKEN = "STREAMPAY_INCIDENT_METRICS_TOKEN"  # noqa: S105 - a variable name
ENV_HEALTH_TTL = "STREAMPAY_INCIDENT_HEALTH_TTL"
ENV_MAX_BODY = "STREAMPAY_INCIDENT_MAX_BODY_BYTES"
ENV_TIMEOUT = "STREAMPAY_INCIDENT_PROBE_TIMEOUT"
ENV_HORIZON = envvars.HORIZON_URLS
ENV_RPC = envvars.RPC_URLS
ENV_NETWORK = envvars.NETWORK
ENV_REQUEST_TIMEOUT = "STREAMPAY_INCIDENT_REQUEST_TIMEOUT"


class WebConfigError(ValueError):
    """A setting that cannot be used; the message names the variable, never a secret."""


def _urls(value: str | None) -> tuple[str, ...]:
    return tuple(u.strip() for u in (value or "").split(",") if u.strip())


def _keys(raw: str | None) -> dict[str, str]:
    if raw is None or not raw.strip():
        return {}
    try:
        doc = json.loads(raw)
    except ValueError:
        # json's message quotes the text around the error, which may be a secret.
        raise WebConfigError(
            f"{ENV_KEYS} is not valid JSON: expected an object of key id -> secret"
        ) from None
    if not isinstance(doc, dict):
        raise WebConfigError(f"{ENV_KEYS} must be a JSON object of key id -> secret")
    for key_id, secret in doc.items():
        if not key_id or not isinstance(secret, str) or not secret:
            raise WebConfigError(f"{ENV_KEYS}: key id {key_id!r} needs a non-empty string secret")
    return dict(doc)


def _number(environ: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise WebConfigError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value < minimum:
        raise WebConfigError(f"{name} must be a number >= {minimum:g}, got {raw!r}")
    return value


@attrs.frozen
class WebConfig:
    """Everything the web app needs to know; build it with :meth:`from_env` or directly.

    ``hmac_keys`` maps key id to secret (several at once during a rotation).
    ``insecure_no_auth`` turns authentication off (``serve --insecure-no-auth``,
    loopback only); every response then carries a warning header.
    ``request_timeout_seconds`` bounds the wait for a request body (``408``).
    """

    hmac_keys: Mapping[str, str] = attrs.field(factory=dict, repr=False, converter=key_table)
    clock_skew_seconds: int = DEFAULT_CLOCK_SKEW_SECONDS
    allowed_services: frozenset[str] | None = None
    metrics_token: str | None = attrs.field(default=None, repr=False)
    health_ttl_seconds: float = DEFAULT_HEALTH_TTL_SECONDS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    horizon_urls: tuple[str, ...] = ()
    rpc_urls: tuple[str, ...] = ()
    network_passphrase: str | None = None
    probe_timeout_seconds: float = DEFAULT_PROBE_TIMEOUT_SECONDS
    insecure_no_auth: bool = False
    request_timeout_seconds: float = DEFAULT_REQUEST_TIMEOUT_SECONDS

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(sorted(self.hmac_keys))

    @property
    def chain_configured(self) -> bool:
        return bool(self.horizon_urls or self.rpc_urls)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> WebConfig:
        """Read every setting from an environment mapping; :class:`WebConfigError` if unusable."""
        allowed = environ.get(ENV_ALLOWED, "").strip()
        network = environ.get(ENV_NETWORK, "").strip()
        config = cls(
            hmac_keys=_keys(environ.get(ENV_KEYS)),
            clock_skew_seconds=int(
                _number(environ, ENV_SKEW, DEFAULT_CLOCK_SKEW_SECONDS, minimum=0)
            ),
            allowed_services=(
                frozenset(s.strip() for s in allowed.split(",") if s.strip()) if allowed else None
            ),
            metrics_token=environ.get(ENV_METRICS_TOKEN, "").strip() or None,
            health_ttl_seconds=_number(
                environ, ENV_HEALTH_TTL, DEFAULT_HEALTH_TTL_SECONDS, minimum=0
            ),
            max_body_bytes=int(_number(environ, ENV_MAX_BODY, DEFAULT_MAX_BODY_BYTES, minimum=0)),
            horizon_urls=_urls(environ.get(ENV_HORIZON)),
            rpc_urls=_urls(environ.get(ENV_RPC)),
            network_passphrase=resolve_network(network) if network else None,
            probe_timeout_seconds=_number(
                environ, ENV_TIMEOUT, DEFAULT_PROBE_TIMEOUT_SECONDS, minimum=0.1
            ),
            request_timeout_seconds=_number(
                environ, ENV_REQUEST_TIMEOUT, DEFAULT_REQUEST_TIMEOUT_SECONDS, minimum=0.1
            ),
        )
        if config.chain_configured and config.network_passphrase is None:
            raise WebConfigError(
                f"{ENV_HORIZON}/{ENV_RPC} are set but {ENV_NETWORK} is not: "
                "give public, testnet or a passphrase (the wrong network gives wrong answers)"
            )
        return config
