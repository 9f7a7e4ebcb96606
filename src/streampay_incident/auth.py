"""StreamPay's ``streampay-hmac-v1`` request signing, as its TypeScript signer does it.
(Over 400 lines as one thing: the signer, the verifier and the URL normalisation they share.)

StreamPay signs its internal service-to-service calls with five headers. The
canonical request is these lines joined with ``\\n``::

    streampay-hmac-v1
    METHOD (upper case)
    /path?query                  (as the WHATWG URL parser serialises them:
                                  percent-encoding kept, dot segments resolved;
                                  '?' only when there is a query)
    service name
    key id
    timestamp (epoch milliseconds, decimal)
    lower-case hex SHA-256 of the raw body

and the signature is ``v1=`` + lower-case hex HMAC-SHA256 keyed with the UTF-8
bytes of the secret. :func:`sign_request` produces the headers;
:class:`HmacVerifier` checks them in StreamPay's order (headers present,
service allowed, key id known, timestamp fresh; then the body limit, the body
hash and the signature), comparing in constant time and accepting several keys
at once so callers can rotate. Every header value is bounded in length before
it is parsed. Failures carry a reason code for the log; the web app answers
every one of them with the same 404.

StreamPay's signer (``Streampay-Org/StreamPay-Frontend``,
``app/lib/internal-service-auth.ts``) builds the target with ``new URL(url)``:
:func:`whatwg_target` reproduces that serialisation, so a path with ``/./``,
``/../``, a space, a ``'`` in the query or non-ASCII text is signed and
verified the way StreamPay signs it.

Pure standard library: no clock is read unless the caller leaves
``timestamp_ms``/``now_ms`` out, and nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Mapping
from typing import Literal
from urllib.parse import urlsplit

import attrs

SCHEME = "streampay-hmac-v1"
SIGNATURE_PREFIX = "v1="

HEADER_SERVICE = "x-streampay-service-name"
HEADER_KEY_ID = "x-streampay-key-id"
HEADER_TIMESTAMP = "x-streampay-timestamp"
HEADER_CONTENT_SHA256 = "x-streampay-content-sha256"
HEADER_SIGNATURE = "x-streampay-signature"
HEADERS: tuple[str, ...] = (
    HEADER_SERVICE,
    HEADER_KEY_ID,
    HEADER_TIMESTAMP,
    HEADER_CONTENT_SHA256,
    HEADER_SIGNATURE,
)

DEFAULT_CLOCK_SKEW_SECONDS = 300

# Bounds checked before any header is parsed or looked up. StreamPay's values are short
# (key ids and service names are names, the signature is 67 characters); a timestamp of
# more than 16 digits is centuries away from any clock, so it is stale without int().
MAX_HEADER_VALUE_CHARS = 256
MAX_TIMESTAMP_DIGITS = 16

FailureReason = Literal[
    "OVERSIZED_HEADER",
    "MISSING_SIGNATURE",
    "SERVICE_NOT_ALLOWED",
    "UNKNOWN_KEY",
    "STALE_TIMESTAMP",
    "BODY_TOO_LARGE",
    "BAD_CONTENT_HASH",
    "BAD_SIGNATURE",
]

EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()


def body_sha256(body: bytes) -> str:
    """Lower-case hex SHA-256 of the raw body bytes."""
    return hashlib.sha256(body).hexdigest()


def path_and_query(url_or_path: str) -> str:
    """The target of a URL or path as written: path, plus ``?query`` when there is one.

    Nothing is decoded or normalised here: ``settlement%3Aabc`` stays as written.
    A fragment is never sent, so it is dropped. :func:`whatwg_target` gives the
    form that is signed.
    """
    if "://" in url_or_path:
        parts = urlsplit(url_or_path)
        path, query = parts.path or "/", parts.query
    else:
        path, _, query = url_or_path.partition("#")[0].partition("?")
    return f"{path}?{query}" if query else path


# The WHATWG URL standard's percent-encode sets for an http(s) URL, beyond the C0 controls
# and everything above U+007E (encoded in every set). Node's URL, which StreamPay's signer
# uses, leaves '^', '|' and '\\' of a query as they are.
_PATH_PERCENT_ENCODE = frozenset(' "#<>?`{}')
_QUERY_PERCENT_ENCODE = frozenset(" \"#<>'")
_SINGLE_DOT = frozenset({".", "%2e"})
_ABSOLUTE_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_DOUBLE_DOT = frozenset({"..", ".%2e", "%2e.", "%2e%2e"})


def _percent_encode(text: str, encode_set: frozenset[str]) -> str:
    out = []
    for char in text:
        if char in encode_set or not " " <= char <= "~":
            try:
                # Raw bytes that were not UTF-8 arrive as surrogate escapes: encode those bytes.
                encoded = char.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:
                encoded = "\ufffd".encode()  # a lone surrogate, as JavaScript's USVString has it
            out.append("".join(f"%{byte:02X}" for byte in encoded))
        else:
            out.append(char)
    return "".join(out)


def _whatwg_path(path: str) -> str:
    """``URL.pathname`` of an http(s) URL with this path: dot segments resolved, '\\' is '/'."""
    segments: list[str] = []
    parts = path.replace("\\", "/").removeprefix("/").split("/")
    for position, part in enumerate(parts, start=1):
        segment = _percent_encode(part, _PATH_PERCENT_ENCODE)
        last = position == len(parts)
        if segment.lower() in _DOUBLE_DOT:
            if segments:
                segments.pop()
            if last:
                segments.append("")
        elif segment.lower() in _SINGLE_DOT:
            if last:
                segments.append("")
        else:
            segments.append(segment)
    return "/" + "/".join(segments)


def whatwg_target(url_or_path: str) -> str:
    """``pathname + search`` of ``new URL(url)``: the target StreamPay's signer signs.

    A path (``/a/./b?q=it's``) is read as if it followed ``http://host``. Tabs
    and newlines are removed, and leading and trailing spaces and controls
    stripped, as the parser does; the path's dot segments (``.``, ``..``,
    ``%2e``) are resolved and ``\\`` read as ``/``; space, ``"``, ``<``, ``>``,
    `````, ``{``, ``}`` and non-ASCII text in the path, and space, ``"``,
    ``<``, ``>``, ``'`` and non-ASCII text in the query, are percent-encoded
    (UTF-8). Existing percent-encoding is kept as written (``%3a`` stays lower
    case). A fragment is dropped and an empty query (a lone ``?``) removed.
    Applying it twice changes nothing.
    """
    text = url_or_path.strip("".join(map(chr, range(0x21))))
    text = text.replace("\t", "").replace("\n", "").replace("\r", "")
    if _ABSOLUTE_URL.match(text):
        # Scheme and authority are not signed: keep what follows the host.
        rest = text.split("://", 1)[1]
        cut = min((i for i in (rest.find(c) for c in "/\\?#") if i >= 0), default=len(rest))
        text = rest[cut:]
    text = text.partition("#")[0]
    path, has_query, query = text.partition("?")
    target = _whatwg_path(path)
    if has_query and query:
        target += "?" + _percent_encode(query, _QUERY_PERCENT_ENCODE)
    return target


def canonical_request(
    method: str,
    target: str,
    *,
    service_name: str,
    key_id: str,
    timestamp_ms: int | str,
    content_sha256: str,
) -> str:
    """The string that is signed: seven lines joined with ``\\n`` (no trailing newline)."""
    return "\n".join(
        (SCHEME, method.upper(), target, service_name, key_id, str(timestamp_ms), content_sha256)
    )


def compute_signature(secret: str, canonical: str) -> str:
    """``v1=`` + lower-case hex HMAC-SHA256(UTF-8 secret, canonical request)."""
    digest = hmac.new(secret.encode("utf-8"), canonical.encode("utf-8"), hashlib.sha256)
    return SIGNATURE_PREFIX + digest.hexdigest()


def now_ms() -> int:
    """The current time in epoch milliseconds (the one clock read of this module)."""
    return time.time_ns() // 1_000_000


_clock_ms = now_ms  # reachable inside methods whose ``now_ms`` parameter shadows the function


def sign_request(
    method: str,
    url_or_path: str,
    body: bytes = b"",
    *,
    service_name: str,
    key_id: str,
    secret: str,
    timestamp_ms: int | None = None,
) -> dict[str, str]:
    """The five ``x-streampay-*`` headers for one request.

    ``url_or_path`` is the full URL or the path (with query) as it will be
    sent, mount prefix included; it is signed as :func:`whatwg_target`
    serialises it. The body is hashed as the raw bytes that will be sent.
    ``timestamp_ms`` defaults to now. Reproduces every vector of StreamPay's
    TypeScript signer.
    """
    if timestamp_ms is None:
        timestamp_ms = now_ms()
    content = body_sha256(body)
    canonical = canonical_request(
        method,
        whatwg_target(url_or_path),
        service_name=service_name,
        key_id=key_id,
        timestamp_ms=timestamp_ms,
        content_sha256=content,
    )
    return {
        HEADER_CONTENT_SHA256: content,
        HEADER_KEY_ID: key_id,
        HEADER_SERVICE: service_name,
        HEADER_SIGNATURE: compute_signature(secret, canonical),
        HEADER_TIMESTAMP: str(timestamp_ms),
    }


@attrs.frozen
class AuthFailure:
    """Why a request was refused (for the log only; never sent to the caller)."""

    reason: FailureReason
    service: str | None = None
    key_id: str | None = None


@attrs.frozen
class SignedHeaders:
    """The signature headers of a request that passed the header stage."""

    service: str
    key_id: str
    timestamp: str
    content_sha256: str
    signature: str


def _header_map(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str | None]:
    """Signature headers by lower-case name; a header sent twice counts as absent."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    found: dict[str, str | None] = {}
    for name, value in items:
        key = name.lower()
        if key in HEADERS:
            # Two different values for one signature header is ambiguous: refuse it.
            found[key] = None if key in found else value
    return found


def key_table(keys: Mapping[str, str]) -> dict[str, str]:
    """A private copy of a key id -> secret table (the caller's dict may change later)."""
    return dict(keys)


@attrs.frozen
class HmacVerifier:
    """Verifies ``streampay-hmac-v1`` requests against several keys at once.

    ``keys`` maps key id to secret (current and next during a rotation);
    ``allowed_services``, when set, is the service-name allow-list.
    """

    keys: Mapping[str, str] = attrs.field(converter=key_table, repr=False)
    clock_skew_seconds: int = DEFAULT_CLOCK_SKEW_SECONDS
    allowed_services: frozenset[str] | None = None

    def check_headers(
        self,
        headers: Mapping[str, str] | Iterable[tuple[str, str]],
        *,
        now_ms: int | None = None,
    ) -> SignedHeaders | AuthFailure:
        """The header stage, in order: headers present, service allowed, key known, fresh.

        Any signature header longer than :data:`MAX_HEADER_VALUE_CHARS` is refused
        first (``OVERSIZED_HEADER``), before anything is looked up or parsed.
        """
        found = _header_map(headers)
        if any(v is not None and len(v) > MAX_HEADER_VALUE_CHARS for v in found.values()):
            return AuthFailure("OVERSIZED_HEADER")
        service = found.get(HEADER_SERVICE)
        key_id = found.get(HEADER_KEY_ID)
        values = [found.get(h) for h in HEADERS]
        signature = found.get(HEADER_SIGNATURE)
        if any(not v for v in values) or not (signature or "").startswith(SIGNATURE_PREFIX):
            return AuthFailure("MISSING_SIGNATURE", service=service, key_id=key_id)
        assert service is not None and key_id is not None and signature is not None
        if self.allowed_services is not None and service not in self.allowed_services:
            return AuthFailure("SERVICE_NOT_ALLOWED", service=service, key_id=key_id)
        if key_id not in self.keys:
            return AuthFailure("UNKNOWN_KEY", service=service, key_id=key_id)
        timestamp = found[HEADER_TIMESTAMP]
        assert timestamp is not None
        current = now_ms if now_ms is not None else _clock_ms()
        # Only plain decimal digits: "1e12", "+5" or " 5" are not what StreamPay sends.
        plain = timestamp.isascii() and timestamp.isdigit()
        if (
            not plain
            or len(timestamp) > MAX_TIMESTAMP_DIGITS
            or (abs(current - int(timestamp)) > self.clock_skew_seconds * 1000)
        ):
            return AuthFailure("STALE_TIMESTAMP", service=service, key_id=key_id)
        content = found[HEADER_CONTENT_SHA256]
        assert content is not None
        return SignedHeaders(service, key_id, timestamp, content, signature)

    def check_body(
        self, signed: SignedHeaders, method: str, target: str, body: bytes
    ) -> AuthFailure | None:
        """The body stage: the declared hash, then the signature, both in constant time.

        ``target`` is the path and query as received; the signature is checked
        over its :func:`whatwg_target` form, which is what StreamPay's signer signs.
        """
        actual = body_sha256(body)
        if not hmac.compare_digest(signed.content_sha256.encode(), actual.encode()):
            return AuthFailure("BAD_CONTENT_HASH", service=signed.service, key_id=signed.key_id)
        canonical = canonical_request(
            method,
            whatwg_target(target),
            service_name=signed.service,
            key_id=signed.key_id,
            timestamp_ms=signed.timestamp,
            content_sha256=actual,
        )
        expected = compute_signature(self.keys[signed.key_id], canonical)
        if not hmac.compare_digest(signed.signature.encode(), expected.encode()):
            return AuthFailure("BAD_SIGNATURE", service=signed.service, key_id=signed.key_id)
        return None

    def verify(
        self,
        method: str,
        url_or_path: str,
        headers: Mapping[str, str] | Iterable[tuple[str, str]],
        body: bytes = b"",
        *,
        now_ms: int | None = None,
        max_body_bytes: int | None = None,
    ) -> AuthFailure | SignedHeaders:
        """Every stage for a request already in hand; ``SignedHeaders`` when it is genuine."""
        signed = self.check_headers(headers, now_ms=now_ms)
        if isinstance(signed, AuthFailure):
            return signed
        if max_body_bytes is not None and len(body) > max_body_bytes:
            return AuthFailure("BODY_TOO_LARGE", service=signed.service, key_id=signed.key_id)
        failure = self.check_body(signed, method, whatwg_target(url_or_path), body)
        return failure or signed


def verify_request(
    method: str,
    url_or_path: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    body: bytes = b"",
    *,
    keys: Mapping[str, str],
    clock_skew_seconds: int = DEFAULT_CLOCK_SKEW_SECONDS,
    allowed_services: Iterable[str] | None = None,
    max_body_bytes: int | None = None,
    now_ms: int | None = None,
) -> SignedHeaders | AuthFailure:
    """One-call verification: :class:`SignedHeaders` when genuine, else the :class:`AuthFailure`.

    The same checks, in the same order, as :meth:`HmacVerifier.verify`.
    """
    verifier = HmacVerifier(
        keys,
        clock_skew_seconds=clock_skew_seconds,
        allowed_services=frozenset(allowed_services) if allowed_services is not None else None,
    )
    return verifier.verify(
        method, url_or_path, headers, body, now_ms=now_ms, max_body_bytes=max_body_bytes
    )


def bearer_token_matches(authorization: str | None, token: str | None) -> bool:
    """``Authorization: Bearer <token>`` against the configured token, in constant time."""
    if not token or not authorization:
        return False
    scheme, _, presented = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode("utf-8"), token.encode("utf-8"))
