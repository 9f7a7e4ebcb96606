"""WebConfig.from_env: StreamPay's variable names, defaults, and errors that never echo a secret."""

from __future__ import annotations

import pytest

from streampay_incident.stellar.networks import PUBLIC, TESTNET
from streampay_incident.web import WebConfig, WebConfigError
from streampay_incident.web.config import DEFAULT_MAX_BODY_BYTES


def test_defaults_from_an_empty_environment():
    config = WebConfig.from_env({})
    assert config.hmac_keys == {}
    assert config.clock_skew_seconds == 300
    assert config.allowed_services is None
    assert config.metrics_token is None
    assert config.health_ttl_seconds == 5.0
    assert config.max_body_bytes == DEFAULT_MAX_BODY_BYTES == 8 * 1024 * 1024
    assert config.probe_timeout_seconds == 5.0
    assert config.request_timeout_seconds == 10.0
    assert not config.chain_configured
    assert config.insecure_no_auth is False


def test_every_variable():
    config = WebConfig.from_env(
        {
            "INTERNAL_SERVICE_HMAC_KEYS": '{"current": "s3cret-one", "next": "s3cret-two"}',
            "INTERNAL_SERVICE_CLOCK_SKEW_SECONDS": "60",
            "STREAMPAY_INCIDENT_ALLOWED_SERVICES": "streampay-backend, ops-cli,,",
            "STREAMPAY_INCIDENT_METRICS_TOKEN": " tok ",
            "STREAMPAY_INCIDENT_HEALTH_TTL": "2.5",
            "STREAMPAY_INCIDENT_MAX_BODY_BYTES": "1024",
            "STREAMPAY_INCIDENT_PROBE_TIMEOUT": "3",
            "STREAMPAY_INCIDENT_REQUEST_TIMEOUT": "4.5",
            "STREAMPAY_INCIDENT_HORIZON_URLS": "https://h1, https://h2",
            "STREAMPAY_INCIDENT_RPC_URLS": "https://rpc",
            "STREAMPAY_INCIDENT_NETWORK": "testnet",
        }
    )
    assert config.hmac_keys == {"current": "s3cret-one", "next": "s3cret-two"}
    assert config.key_ids == ("current", "next")
    assert config.clock_skew_seconds == 60
    assert config.allowed_services == frozenset({"streampay-backend", "ops-cli"})
    assert config.metrics_token == "tok"
    assert config.health_ttl_seconds == 2.5
    assert config.max_body_bytes == 1024
    assert config.probe_timeout_seconds == 3.0
    assert config.request_timeout_seconds == 4.5
    assert config.horizon_urls == ("https://h1", "https://h2")
    assert config.rpc_urls == ("https://rpc",)
    assert config.network_passphrase == TESTNET
    assert config.chain_configured


def test_a_full_passphrase_is_kept():
    config = WebConfig.from_env(
        {"STREAMPAY_INCIDENT_RPC_URLS": "https://rpc", "STREAMPAY_INCIDENT_NETWORK": PUBLIC}
    )
    assert config.network_passphrase == PUBLIC


def test_repr_hides_secrets():
    config = WebConfig(hmac_keys={"current": "hunter2-very-secret"}, metrics_token="tok-secret")
    assert "hunter2" not in repr(config)
    assert "tok-secret" not in repr(config)


@pytest.mark.parametrize(
    "raw",
    [
        '{"current": "hunter2-secret"',
        '["hunter2-secret"]',
        '{"current": 5}',
        '{"": "hunter2"}',
        '{"current": ""}',
    ],
)
def test_bad_keys_never_echo_the_secret(raw):
    with pytest.raises(WebConfigError) as info:
        WebConfig.from_env({"INTERNAL_SERVICE_HMAC_KEYS": raw})
    assert "INTERNAL_SERVICE_HMAC_KEYS" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_blank_keys_mean_none():
    assert WebConfig.from_env({"INTERNAL_SERVICE_HMAC_KEYS": "  "}).hmac_keys == {}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("INTERNAL_SERVICE_CLOCK_SKEW_SECONDS", "five"),
        ("INTERNAL_SERVICE_CLOCK_SKEW_SECONDS", "-1"),
        ("STREAMPAY_INCIDENT_HEALTH_TTL", "nan"),
        ("STREAMPAY_INCIDENT_HEALTH_TTL", "inf"),
        ("STREAMPAY_INCIDENT_MAX_BODY_BYTES", "-5"),
        ("STREAMPAY_INCIDENT_PROBE_TIMEOUT", "0"),
        ("STREAMPAY_INCIDENT_REQUEST_TIMEOUT", "0.01"),
    ],
)
def test_bad_numbers(name, value):
    with pytest.raises(WebConfigError, match=name):
        WebConfig.from_env({name: value})


def test_endpoints_without_a_network_are_refused():
    with pytest.raises(WebConfigError, match="STREAMPAY_INCIDENT_NETWORK"):
        WebConfig.from_env({"STREAMPAY_INCIDENT_HORIZON_URLS": "https://h"})
