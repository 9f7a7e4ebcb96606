"""streampay-hmac-v1: StreamPay's vectors, its URL serialisation, every way verification fails."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import HMAC_VECTORS
from streampay_incident import auth
from streampay_incident.auth import (
    HEADERS,
    AuthFailure,
    HmacVerifier,
    SignedHeaders,
    bearer_token_matches,
    canonical_request,
    path_and_query,
    sign_request,
    verify_request,
    whatwg_target,
)

SPEC = json.loads(HMAC_VECTORS.read_text(encoding="utf-8"))
VECTORS = SPEC["vectors"]
NOW = 1777377600000
KEYS = {"current": "a" * 32, "next": "b" * 32}


def _sign(method="GET", target="/internal/incident/health", body=b"", **kw):
    params = {"service_name": "ops-cli", "key_id": "current", "secret": KEYS["current"]}
    params.update(kw)
    params.setdefault("timestamp_ms", NOW)
    return sign_request(method, target, body, **params)


def _verify(headers, method="GET", target="/internal/incident/health", body=b"", **kw):
    verifier = HmacVerifier(KEYS, **kw)
    return verifier.verify(method, target, headers, body, now_ms=NOW, max_body_bytes=1024)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["request"]["url"] for v in VECTORS])
def test_vectors_reproduce_byte_for_byte(vector):
    request = vector["request"]
    headers = sign_request(
        request["method"],
        request["url"],
        request["body"].encode("utf-8"),
        service_name=vector["service_name"],
        key_id=vector["key_id"],
        secret=vector["secret"],
        timestamp_ms=vector["timestamp_ms"],
    )
    assert headers == vector["expected_headers"]
    assert json.dumps(headers, sort_keys=True) == json.dumps(
        vector["expected_headers"], sort_keys=True
    )


@pytest.mark.parametrize("vector", VECTORS, ids=[v["request"]["url"] for v in VECTORS])
def test_vectors_verify(vector):
    request = vector["request"]
    verifier = HmacVerifier({vector["key_id"]: vector["secret"], "other": "x" * 32})
    result = verifier.verify(
        request["method"],
        request["url"],
        vector["expected_headers"],
        request["body"].encode("utf-8"),
        now_ms=vector["timestamp_ms"] + 1000,
    )
    assert isinstance(result, SignedHeaders)
    assert result.service == vector["service_name"]
    assert result.key_id == vector["key_id"]


def test_vector_signature_matches_an_independent_computation():
    vector = VECTORS[2]
    canonical = "\n".join(
        [
            "streampay-hmac-v1",
            "GET",
            "/internal/incident/settlements/settlement%3Aabc%3A123",
            "ops-cli",
            "current",
            "1800000000000",
            hashlib.sha256(b"").hexdigest(),
        ]
    )
    digest = hmac.new(vector["secret"].encode("utf-8"), canonical.encode(), hashlib.sha256)
    assert vector["expected_headers"]["x-streampay-signature"] == "v1=" + digest.hexdigest()
    assert (
        canonical_request(
            "get",
            "/internal/incident/settlements/settlement%3Aabc%3A123",
            service_name="ops-cli",
            key_id="current",
            timestamp_ms=1800000000000,
            content_sha256=hashlib.sha256(b"").hexdigest(),
        )
        == canonical
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://h/internal/incident/health", "/internal/incident/health"),
        ("https://h:8443/a/b?x=1&y=%2F", "/a/b?x=1&y=%2F"),
        ("http://h/a?", "/a"),
        ("http://h", "/"),
        ("/a/b%3Ac?z=1#frag", "/a/b%3Ac?z=1"),
        ("/a/b", "/a/b"),
        ("//double/slash?q", "//double/slash?q"),
    ],
)
def test_path_and_query_keeps_the_raw_target(given, expected):
    assert path_and_query(given) == expected


def test_sign_request_defaults_to_now(monkeypatch):
    monkeypatch.setattr(auth.time, "time_ns", lambda: 1_234_567_890_123_456_789)
    headers = sign_request("GET", "/x", service_name="s", key_id="k", secret="z")
    assert headers["x-streampay-timestamp"] == "1234567890123"


def test_method_is_upper_cased_when_signing():
    assert _sign("get") == _sign("GET")


def test_both_rotation_keys_are_accepted_at_once():
    for key_id in KEYS:
        headers = _sign(key_id=key_id, secret=KEYS[key_id])
        assert isinstance(_verify(headers), SignedHeaders)


def test_the_right_key_must_sign_for_its_id():
    headers = _sign(key_id="next", secret=KEYS["current"])
    assert _verify(headers) == AuthFailure("BAD_SIGNATURE", service="ops-cli", key_id="next")


@pytest.mark.parametrize("missing", HEADERS)
def test_each_missing_header(missing):
    headers = {k: v for k, v in _sign().items() if k != missing}
    assert _verify(headers).reason == "MISSING_SIGNATURE"


@pytest.mark.parametrize("empty", HEADERS)
def test_each_empty_header(empty):
    headers = {**_sign(), empty: ""}
    assert _verify(headers).reason == "MISSING_SIGNATURE"


def test_signature_without_v1_prefix():
    headers = _sign()
    headers["x-streampay-signature"] = headers["x-streampay-signature"].removeprefix("v1=")
    assert _verify(headers).reason == "MISSING_SIGNATURE"


def test_header_names_are_case_insensitive_and_lists_work():
    headers = [(k.upper(), v) for k, v in _sign().items()] + [("Accept", "*/*")]
    assert isinstance(_verify(headers), SignedHeaders)


def test_a_signature_header_sent_twice_is_refused():
    headers = list(_sign().items()) + [("x-streampay-key-id", "next")]
    assert _verify(headers).reason == "MISSING_SIGNATURE"


def test_service_allow_list():
    headers = _sign(service_name="intruder")
    failure = _verify(headers, allowed_services=frozenset({"ops-cli"}))
    assert failure == AuthFailure("SERVICE_NOT_ALLOWED", service="intruder", key_id="current")
    assert isinstance(_verify(_sign(), allowed_services=frozenset({"ops-cli"})), SignedHeaders)


def test_unknown_key():
    headers = _sign(key_id="retired", secret="c" * 32)
    assert _verify(headers) == AuthFailure("UNKNOWN_KEY", service="ops-cli", key_id="retired")


@pytest.mark.parametrize(
    ("offset_ms", "fresh"),
    [(0, True), (300_000, True), (-300_000, True), (300_001, False), (-300_001, False)],
)
def test_clock_skew_boundary(offset_ms, fresh):
    headers = _sign(timestamp_ms=NOW + offset_ms)
    result = _verify(headers)
    assert isinstance(result, SignedHeaders) is fresh
    if not fresh:
        assert result.reason == "STALE_TIMESTAMP"


def test_configured_clock_skew():
    headers = _sign(timestamp_ms=NOW - 11_000)
    assert _verify(headers, clock_skew_seconds=10).reason == "STALE_TIMESTAMP"
    assert isinstance(_verify(headers, clock_skew_seconds=12), SignedHeaders)


@pytest.mark.parametrize("timestamp", ["1.7e12", "+1777377600000", " 1777377600000", "abc", "١٢"])
def test_timestamp_must_be_plain_decimal(timestamp):
    headers = {**_sign(), "x-streampay-timestamp": timestamp}
    assert _verify(headers).reason == "STALE_TIMESTAMP"


def test_verifier_reads_the_clock_when_not_given(monkeypatch):
    headers = _sign()
    monkeypatch.setattr(auth.time, "time_ns", lambda: NOW * 1_000_000)
    assert isinstance(HmacVerifier(KEYS).check_headers(headers), SignedHeaders)
    monkeypatch.setattr(auth.time, "time_ns", lambda: (NOW + 400_000) * 1_000_000)
    assert HmacVerifier(KEYS).check_headers(headers).reason == "STALE_TIMESTAMP"


def test_body_over_the_limit():
    body = b"x" * 1025
    headers = _sign("POST", "/t", body)
    assert _verify(headers, "POST", "/t", body).reason == "BODY_TOO_LARGE"


def test_bad_content_hash():
    headers = _sign("POST", "/t", b'{"payouts":[]}')
    assert _verify(headers, "POST", "/t", b'{"payouts":[] }').reason == "BAD_CONTENT_HASH"


def test_declared_hash_must_be_exact():
    headers = _sign("POST", "/t", b"[]")
    headers["x-streampay-content-sha256"] = headers["x-streampay-content-sha256"].upper()
    assert _verify(headers, "POST", "/t", b"[]").reason == "BAD_CONTENT_HASH"


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("POST", "/internal/incident/health"),
        ("GET", "/internal/incident/health?x=1"),
        ("GET", "/health"),
        ("GET", "/internal/incident/Health"),
        ("GET", "/internal/incident/health/"),
    ],
)
def test_signature_covers_method_path_and_query(method, target):
    headers = _sign()
    assert _verify(headers, method, target).reason == "BAD_SIGNATURE"


def test_percent_encoding_is_signed_as_sent():
    headers = _sign("GET", "/s/settlement%3Aabc")
    assert isinstance(_verify(headers, "GET", "/s/settlement%3Aabc"), SignedHeaders)
    assert _verify(headers, "GET", "/s/settlement:abc").reason == "BAD_SIGNATURE"
    assert _verify(headers, "GET", "/s/settlement%3aabc").reason == "BAD_SIGNATURE"


@pytest.mark.parametrize(
    "header", ["x-streampay-service-name", "x-streampay-timestamp", "x-streampay-signature"]
)
def test_tampered_headers_break_the_signature(header):
    headers = _sign()
    value = headers[header]
    if header == "x-streampay-timestamp":
        headers[header] = str(int(value) + 1)
    elif header == "x-streampay-signature":
        headers[header] = value[:-1] + ("0" if value[-1] != "0" else "1")
    else:
        headers[header] = value + "x"
    assert _verify(headers).reason == "BAD_SIGNATURE"


def test_upper_case_signature_hex_is_refused():
    headers = _sign()
    headers["x-streampay-signature"] = "v1=" + headers["x-streampay-signature"][3:].upper()
    assert _verify(headers).reason == "BAD_SIGNATURE"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        # headers present comes before the service allow-list, key and clock
        ({"x-streampay-signature": "sig", "x-streampay-key-id": "nope"}, "MISSING_SIGNATURE"),
        # the allow-list before the key id
        (
            {"x-streampay-service-name": "intruder", "x-streampay-key-id": "nope"},
            "SERVICE_NOT_ALLOWED",
        ),
        # the key id before the clock
        ({"x-streampay-key-id": "nope", "x-streampay-timestamp": "1"}, "UNKNOWN_KEY"),
        # the clock before the body limit and the body hash
        ({"x-streampay-timestamp": "1"}, "STALE_TIMESTAMP"),
        # the body limit before the body hash
        ({"x-streampay-content-sha256": "0" * 64}, "BODY_TOO_LARGE"),
    ],
)
def test_order_of_checks(headers, expected):
    body = b"y" * 2048
    good = _sign("POST", "/t", b"something else", service_name="ops-cli")
    verifier = HmacVerifier(KEYS, allowed_services=frozenset({"ops-cli"}))
    result = verifier.verify(
        "POST", "/t", {**good, **headers}, body, now_ms=NOW, max_body_bytes=1024
    )
    assert result.reason == expected


def test_content_hash_is_checked_before_the_signature():
    headers = _sign("POST", "/t", b"a")
    headers["x-streampay-signature"] = "v1=" + "0" * 64
    assert _verify(headers, "POST", "/t", b"b").reason == "BAD_CONTENT_HASH"


def test_comparisons_are_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    assert isinstance(_verify(_sign()), SignedHeaders)
    assert len(calls) == 2  # the body hash and the signature
    assert bearer_token_matches("Bearer t0k", "t0k")
    assert len(calls) == 3


def test_failures_and_repr_never_hold_the_secret():
    verifier = HmacVerifier(KEYS)
    assert KEYS["current"] not in repr(verifier)
    failure = verifier.verify("GET", "/x", _sign(secret="wrong"), b"", now_ms=NOW)
    assert KEYS["current"] not in repr(failure)


@pytest.mark.parametrize(
    ("authorization", "token", "ok"),
    [
        ("Bearer tok", "tok", True),
        ("bearer tok", "tok", True),
        ("Bearer  tok ", "tok", True),
        ("Bearer tok2", "tok", False),
        ("Basic tok", "tok", False),
        ("tok", "tok", False),
        (None, "tok", False),
        ("Bearer ", "", False),
        ("Bearer tok", None, False),
        ("Bearer tök", "tok", False),
    ],
)
def test_bearer_token(authorization, token, ok):
    assert bearer_token_matches(authorization, token) is ok


@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD"]),
    path=st.text(
        alphabet=st.characters(codec="ascii", exclude_characters="?# \r\n"), max_size=40
    ).map(lambda p: "/" + p),
    query=st.text(alphabet=st.characters(codec="ascii", exclude_characters="# \r\n"), max_size=20),
    body=st.binary(max_size=200),
    service=st.text(alphabet=st.characters(codec="ascii", categories=["L", "N"]), min_size=1),
    secret=st.text(min_size=1, max_size=40),
)
def test_sign_then_verify_round_trips(method, path, query, body, service, secret):
    target = f"{path}?{query}" if query else path
    headers = sign_request(
        method, target, body, service_name=service, key_id="k", secret=secret, timestamp_ms=NOW
    )
    verifier = HmacVerifier({"k": secret})
    assert isinstance(verifier.verify(method, target, headers, body, now_ms=NOW), SignedHeaders)
    if body:
        flipped = bytes([body[0] ^ 1]) + body[1:]
        assert verifier.verify(method, target, headers, flipped, now_ms=NOW).reason == (
            "BAD_CONTENT_HASH"
        )


def test_verify_request_in_one_call():
    headers = _sign(service_name="ops-cli")
    target = "/internal/incident/health"
    ok = verify_request("GET", target, headers, keys=KEYS, now_ms=NOW, allowed_services=["ops-cli"])
    assert isinstance(ok, SignedHeaders)
    refused = verify_request("GET", target, headers, keys=KEYS, now_ms=NOW, allowed_services=[])
    assert refused.reason == "SERVICE_NOT_ALLOWED"
    big = verify_request("GET", target, headers, b"xx", keys=KEYS, now_ms=NOW, max_body_bytes=1)
    assert big.reason == "BODY_TOO_LARGE"
    stale = verify_request(
        "GET", target, headers, keys=KEYS, now_ms=NOW + 61_000, clock_skew_seconds=60
    )
    assert stale.reason == "STALE_TIMESTAMP"


# Expected values computed by hand from the WHATWG URL standard (path and special-query
# percent-encode sets, dot segments) and checked against Node 20's `new URL("http://h" + t)`,
# which StreamPay's signer uses: `pathname + search`.
@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/internal/incident/health", "/internal/incident/health"),
        ("/s/settlement%3Aabc%3A123", "/s/settlement%3Aabc%3A123"),
        ("/s/settlement%3aabc", "/s/settlement%3aabc"),  # percent-encoding kept as written
        ("/a b/it's/é?x='y z'&é=1", "/a%20b/it's/%C3%A9?x=%27y%20z%27&%C3%A9=1"),
        ("/a/./b/../c", "/a/c"),
        ("/a/%2e/b/%2E%2e/c", "/a/c"),
        ("/a/.%2E/b", "/b"),
        ("/a/..", "/"),
        ("/a/.", "/a/"),
        ("/a/b/..", "/a/"),
        ("/a/b/../", "/a/"),
        ("/..", "/"),
        ("/a/.../b", "/a/.../b"),
        ("/x/..%2f/y", "/x/..%2f/y"),
        ("/a/b/..;/c", "/a/b/..;/c"),
        ('/a^b|c{d}e`f"g<h>', "/a^b|c%7Bd%7De%60f%22g%3Ch%3E"),
        ('/q?a^b|c{d}e`f"g<h>\\', "/q?a^b|c{d}e`f%22g%3Ch%3E\\"),
        ("/a\\b", "/a/b"),
        ("/p?", "/p"),
        ("/p?#x", "/p"),
        ("/p#x?y", "/p"),
        ("/a?b?c", "/a?b?c"),
        ("/a//b/", "/a//b/"),
        ("//x/y", "//x/y"),
        ("/%zz%41?%zz", "/%zz%41?%zz"),
        ("/a\tb\nc", "/abc"),
        ("/ a ", "/%20a"),
        ("", "/"),
        ("/a/\x01\x7f\x80/b?\x01\x7f", "/a/%01%7F%C2%80/b?%01%7F"),
        ("/a/\U0001f600?\U0001f600", "/a/%F0%9F%98%80?%F0%9F%98%80"),
        ("/été?q=é&x=a+b", "/%C3%A9t%C3%A9?q=%C3%A9&x=a+b"),
        ("/x?u=http://y/./z", "/x?u=http://y/./z"),
        ("http://h/a b?x'", "/a%20b?x%27"),
        ("https://h:8443/a/b?x=1&y=%2F", "/a/b?x=1&y=%2F"),
        ("http://h", "/"),
        ("http://h?x=1", "/?x=1"),
        ("HTTP://H/a/../b", "/b"),
        ("http://u:p@h:1/x/./y#f", "/x/y"),
        ("  http://h/a\tb  ", "/ab"),
        ("http://h\\a\\b", "/a/b"),
        # Raw bytes that are not UTF-8 (surrogate-escaped by the web app) are encoded as sent.
        ("/a/\udce9?\udce9", "/a/%E9?%E9"),
        ("/\ud800", "/%EF%BF%BD"),
    ],
)
def test_whatwg_target_serialises_as_new_url_does(given, expected):
    assert whatwg_target(given) == expected


@given(st.text(max_size=60))
def test_whatwg_target_is_idempotent(text):
    once = whatwg_target(text)
    assert whatwg_target(once) == once
    assert once.startswith("/") and once.isascii()


def _their_signature(target, *, body=b"", secret=KEYS["current"], method="GET"):
    """An independent HMAC over the target StreamPay's signer signs (hand-serialised)."""
    canonical = "\n".join(
        (
            "streampay-hmac-v1",
            method,
            target,
            "ops-cli",
            "current",
            str(NOW),
            hashlib.sha256(body).hexdigest(),
        )
    )
    digest = hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()
    return {
        "x-streampay-service-name": "ops-cli",
        "x-streampay-key-id": "current",
        "x-streampay-timestamp": str(NOW),
        "x-streampay-content-sha256": hashlib.sha256(body).hexdigest(),
        "x-streampay-signature": f"v1={digest}",
    }


@pytest.mark.parametrize(
    ("sent", "signed_as"),
    [
        # A client that sends the path as written; StreamPay's signer signed new URL()'s form.
        ("/internal/incident/./settlements/x/../stl_42", "/internal/incident/settlements/stl_42"),
        (
            "/internal/incident/settlements/o'neil?now=it's",
            "/internal/incident/settlements/o'neil?now=it%27s",
        ),
        (
            "/internal/incident/settlements/a b?q=a b",
            "/internal/incident/settlements/a%20b?q=a%20b",
        ),
        ("/internal/incident/settlements/café", "/internal/incident/settlements/caf%C3%A9"),
        # ... and one that sends exactly what the signer serialised.
        ("/internal/incident/settlements/caf%C3%A9", "/internal/incident/settlements/caf%C3%A9"),
    ],
)
def test_what_streampays_signer_produces_verifies(sent, signed_as):
    headers = _their_signature(signed_as)
    assert isinstance(_verify(headers, "GET", sent), SignedHeaders)
    assert _sign("GET", sent) == headers  # and our signer produces the same headers


def test_the_normalised_target_is_still_signed():
    headers = _their_signature("/internal/incident/settlements/stl_42")
    for other in ("/internal/incident/settlements/stl_43", "/internal/incident/settlements/"):
        assert _verify(headers, "GET", other).reason == "BAD_SIGNATURE"


def test_the_body_hash_is_over_the_raw_bytes_a_bom_included():
    body = "\ufeff[]".encode()
    headers = _sign("POST", "/t", body)
    assert headers["x-streampay-content-sha256"] == hashlib.sha256(body).hexdigest()
    assert isinstance(_verify(headers, "POST", "/t", body), SignedHeaders)
    assert _verify(headers, "POST", "/t", b"[]").reason == "BAD_CONTENT_HASH"


@pytest.mark.parametrize("key_id", ["current", "unknown"])
def test_a_4301_digit_timestamp_is_refused_without_parsing(key_id):
    headers = {**_sign(), "x-streampay-key-id": key_id, "x-streampay-timestamp": "9" * 4301}
    assert _verify(headers).reason == "OVERSIZED_HEADER"


@pytest.mark.parametrize("digits", [17, 20, 256])
def test_a_timestamp_too_long_to_be_fresh_is_stale(digits):
    headers = {**_sign(), "x-streampay-timestamp": "1" * digits}
    assert _verify(headers).reason == "STALE_TIMESTAMP"


@pytest.mark.parametrize("header", HEADERS)
def test_every_header_is_bounded_before_it_is_read(header):
    headers = {**_sign(), header: "v1=" + "a" * auth.MAX_HEADER_VALUE_CHARS}
    failure = _verify(headers)
    assert failure == AuthFailure("OVERSIZED_HEADER")  # no service or key id carried to the log
    at_limit = {**_sign(), header: "x" * auth.MAX_HEADER_VALUE_CHARS}
    assert _verify(at_limit).reason != "OVERSIZED_HEADER"
