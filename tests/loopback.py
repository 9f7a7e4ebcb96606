"""Loopback HTTP servers for network tests: real sockets on 127.0.0.1, started and stopped by tests.

They serve the recorded Stellar bodies from ``tests/fixtures/stellar`` and
misbehave on purpose: hang, trickle one byte at a time, close without
answering, refuse connections, rate-limit, serve problem documents or HTML.
Reusable by every test module::

    from loopback import LoopbackServer, fixture_reply, HANG, horizon_routes

    with LoopbackServer(horizon_routes()) as horizon, LoopbackServer({"*": HANG}) as hung:
        ... probe horizon.url and hung.url ...
        assert horizon.requests[0].headers["user-agent"].startswith("streampay-incident/")

Routes map a key to a :class:`Reply`, a list of replies (served in turn, the
last one repeating), or a callable ``(Request) -> Reply``. Keys, most specific
first: ``"RPC <method>"`` (a JSON-RPC POST whose body names that method),
``"<METHOD> <path>"`` (exact path, query ignored), ``"<METHOD> <glob>"``
(``fnmatch`` pattern such as ``"GET /transactions/*"``), then ``"*"``.
Unmatched requests get Horizon's recorded 404 problem document.

Every server runs on one shared event loop in a daemon thread, so fifty of
them cost fifty listening sockets, not fifty threads.
"""

from __future__ import annotations

import asyncio
import copy
import fnmatch
import json
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from conftest import FIXTURES

Behaviour = Literal["respond", "hang", "trickle", "close"]


@dataclass(frozen=True)
class Reply:
    """What a route answers, and how.

    ``respond``: after ``delay`` seconds, the whole answer at once.
    ``hang``: read the request, then never answer (until the server stops).
    ``trickle``: the answer one byte every ``trickle_interval`` seconds.
    ``close``: read the request, then close the connection without a byte.
    For a JSON-RPC request, ``echo_rpc_id`` rewrites the reply's ``id`` to the
    request's, as a real server does.
    """

    status: int = 200
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    behaviour: Behaviour = "respond"
    delay: float = 0.0
    trickle_interval: float = 0.05
    echo_rpc_id: bool = True

    def with_headers(self, **headers: str) -> Reply:
        """A copy with extra headers (``Retry_After="30"`` becomes ``Retry-After: 30``)."""
        extra = tuple((name.replace("_", "-"), value) for name, value in headers.items())
        return replace(self, headers=self.headers + extra)


HANG = Reply(behaviour="hang")
CLOSE = Reply(behaviour="close")

REASONS = {
    200: "OK",
    404: "Not Found",
    410: "Gone",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def load_json(relative: str) -> Any:
    return json.loads((FIXTURES / relative).read_text(encoding="utf-8"))


def deep_merge(base: Any, overrides: Mapping[str, Any]) -> Any:
    """``base`` with ``overrides`` merged in (nested dicts merge; a value of ``...`` deletes)."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if value is Ellipsis:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def json_reply(doc: Any, status: int = 200, **kwargs: Any) -> Reply:
    return Reply(status=status, body=json.dumps(doc, indent=2).encode(), **kwargs)


def fixture_reply(
    relative: str, status: int = 200, *, overrides: Mapping[str, Any] | None = None, **kwargs: Any
) -> Reply:
    """A recorded body from ``tests/fixtures/stellar``: verbatim, or with ``overrides`` merged.

    Problem documents get ``application/problem+json`` like Horizon serves them.
    """
    path = FIXTURES / relative
    if overrides:
        doc = deep_merge(json.loads(path.read_text(encoding="utf-8")), overrides)
        body = json.dumps(doc).encode()
    else:
        body = path.read_bytes()
    if "content_type" not in kwargs and "/problems/" in relative:
        kwargs["content_type"] = "application/problem+json; charset=utf-8"
    return Reply(status=status, body=body, **kwargs)


def html_reply(status: int = 502, title: str = "502 Bad Gateway") -> Reply:
    """The HTML error page a proxy (nginx, a load balancer) serves instead of JSON."""
    page = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
    return Reply(status=status, body=page.encode(), content_type="text/html")


def rate_limited(retry_after: str = "30", limit: str = "3600", remaining: str = "0") -> Reply:
    """Horizon's 429 problem document with Retry-After and X-RateLimit-* headers."""
    return fixture_reply("horizon/problems/derived/429_rate_limit_exceeded.json", 429).with_headers(
        Retry_After=retry_after,
        X_RateLimit_Limit=limit,
        X_RateLimit_Remaining=remaining,
        X_RateLimit_Reset="60",
    )


def unix(moment: datetime) -> str:
    """Unix seconds as a string, as stellar-rpc serves close times."""
    return str(int(moment.timestamp()))


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# The close time and ledger of the recorded pubnet Horizon root (horizon/root_pubnet_2024-12.json).
HORIZON_CLOSED_AT = datetime(2024, 12, 15, 11, 39, 19, tzinfo=UTC)
HORIZON_LEDGER = 54837706
HORIZON_ELDER_LEDGER = 48530161
HORIZON_ELDER_CLOSED_AT = "2023-10-20T00:00:00Z"


def horizon_routes(
    *,
    root: Mapping[str, Any] | None = None,
    health: str | Reply = "horizon/health/200_healthy.json",
    fee_stats: str | Reply = "horizon/fee_stats_pubnet_2019.json",
    **extra: Any,
) -> dict[str, Any]:
    """A Horizon serving the recorded pubnet root (``root`` merged in), health and fee stats."""
    routes: dict[str, Any] = {
        "GET /": fixture_reply("horizon/root_pubnet_2024-12.json", overrides=root),
        "GET /health": fixture_reply(health, 200 if "200" in health else 503)
        if isinstance(health, str)
        else health,
        "GET /fee_stats": fixture_reply(fee_stats) if isinstance(fee_stats, str) else fee_stats,
        # The recorded root keeps history from ledger 48530161: its ledger resource, so a
        # 404 for a transaction covers a known span (the recorded ledger body, re-numbered;
        # the close time is an estimate ~6.3M ledgers before the root's latest).
        f"GET /ledgers/{HORIZON_ELDER_LEDGER}": fixture_reply(
            "horizon/ledger_detail_pubnet_docs.json",
            overrides={"sequence": HORIZON_ELDER_LEDGER, "closed_at": HORIZON_ELDER_CLOSED_AT},
        ),
    }
    routes.update(extra)
    return routes


def rpc_routes(
    *,
    passphrase: str | None = None,
    latest_ledger: int | None = None,
    close_time: datetime | None = None,
    health: str | Reply = "rpc/getHealth_healthy_v27_docs.json",
    network: str | Reply = "rpc/getNetwork_testnet_docs.json",
    latest: str | Reply = "rpc/getLatestLedger_full_py.json",
    **extra: Any,
) -> dict[str, Any]:
    """A Stellar RPC serving recorded replies; ``passphrase``/``latest_ledger``/``close_time``
    override the network and the latest ledger (in both getHealth and getLatestLedger)."""
    health_over: dict[str, Any] = {}
    latest_over: dict[str, Any] = {}
    if latest_ledger is not None:
        health_over["latestLedger"] = latest_ledger
        latest_over["sequence"] = latest_ledger
    if close_time is not None:
        health_over["latestLedgerCloseTime"] = unix(close_time)
        latest_over["closeTime"] = unix(close_time)

    def pick(spec: str | Reply, over: Mapping[str, Any] | None) -> Reply:
        if isinstance(spec, Reply):
            return spec
        return fixture_reply(spec, overrides={"result": over} if over else None)

    routes: dict[str, Any] = {
        "RPC getHealth": pick(health, health_over),
        "RPC getNetwork": pick(network, {"passphrase": passphrase} if passphrase else None),
        "RPC getLatestLedger": pick(latest, latest_over),
    }
    routes.update(extra)
    return routes


@dataclass
class Request:
    """One request a loopback server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    rpc_method: str | None = None
    rpc_id: Any = None

    def json(self) -> Any:
        return json.loads(self.body)


RouteValue = Reply | Sequence[Reply] | Callable[[Request], Reply]

NOT_FOUND = fixture_reply("horizon/problems/derived/404_not_found.json", 404)


class _LoopThread:
    """One asyncio loop in a daemon thread, shared by every server of the process."""

    _instance: _LoopThread | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="loopback", daemon=True)
        self.thread.start()

    @classmethod
    def get(cls) -> _LoopThread:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def run(self, coro: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


@dataclass
class _Route:
    value: RouteValue
    served: int = 0

    def next_reply(self, request: Request) -> Reply:
        if callable(self.value) and not isinstance(self.value, Reply):
            return self.value(request)
        if isinstance(self.value, Reply):
            return self.value
        replies = list(self.value)
        reply = replies[min(self.served, len(replies) - 1)]
        self.served += 1
        return reply


class LoopbackServer:
    """An HTTP/1.1 server on ``127.0.0.1:<free port>`` answering from a route table.

    Use as a context manager (or call :meth:`start` / :meth:`stop`). ``url``
    has no trailing slash; ``requests`` lists what arrived, in order.
    """

    def __init__(
        self, routes: Mapping[str, RouteValue] | None = None, *, default: Reply = NOT_FOUND
    ):
        self._routes = {key: _Route(value) for key, value in (routes or {}).items()}
        self._default = default
        self.requests: list[Request] = []
        self.port: int = 0
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping: asyncio.Event | None = None
        self._loop = _LoopThread.get()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_route(self, key: str, value: RouteValue) -> None:
        self._routes[key] = _Route(value)

    def start(self) -> LoopbackServer:
        async def start() -> None:
            self._stopping = asyncio.Event()
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=512)
            self.port = self._server.sockets[0].getsockname()[1]

        self._loop.run(start())
        return self

    def stop(self) -> None:
        async def stop() -> None:
            assert self._server is not None and self._stopping is not None
            self._stopping.set()
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()

        if self._server is not None:
            self._loop.run(stop())
            self._server = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _route(self, request: Request) -> Reply:
        candidates = []
        if request.rpc_method is not None:
            candidates.append(f"RPC {request.rpc_method}")
        candidates.append(f"{request.method} {request.path}")
        for key in candidates:
            if key in self._routes:
                return self._routes[key].next_reply(request)
        for key, route in self._routes.items():
            method, _, pattern = key.partition(" ")
            if method == request.method and pattern and fnmatch.fnmatchcase(request.path, pattern):
                return route.next_reply(request)
        if "*" in self._routes:
            return self._routes["*"].next_reply(request)
        return self._default

    async def _read_request(self, reader: asyncio.StreamReader) -> Request | None:
        line = await reader.readline()
        if not line:
            return None
        method, target, _version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        headers: dict[str, str] = {}
        while True:
            header = await reader.readline()
            if header in (b"\r\n", b"\n", b""):
                break
            name, _, value = header.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or 0)
        body = await reader.readexactly(length) if length else b""
        request = Request(method, target.split("?", 1)[0], headers, body)
        if method == "POST" and body:
            try:
                doc = json.loads(body)
            except ValueError:
                doc = None
            if isinstance(doc, dict) and isinstance(doc.get("method"), str):
                request.rpc_method = doc["method"]
                request.rpc_id = doc.get("id")
        return request

    def _payload(self, reply: Reply, request: Request) -> bytes:
        body = reply.body
        if reply.echo_rpc_id and request.rpc_method is not None and body:
            try:
                doc = json.loads(body)
            except ValueError:
                doc = None
            if isinstance(doc, dict) and "jsonrpc" in doc:
                doc["id"] = request.rpc_id
                body = json.dumps(doc, indent=2).encode()
        head = [f"HTTP/1.1 {reply.status} {REASONS.get(reply.status, 'Status')}"]
        if reply.content_type:
            head.append(f"Content-Type: {reply.content_type}")
        head += [f"{name}: {value}" for name, value in reply.headers]
        head += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
        return "\r\n".join(head).encode("latin-1") + body

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None and self._stopping is not None
        self._tasks.add(task)
        try:
            request = await self._read_request(reader)
            if request is None:
                return
            self.requests.append(request)
            reply = self._route(request)
            if reply.behaviour == "hang":
                await self._stopping.wait()
                return
            if reply.behaviour == "close":
                return
            if reply.delay:
                await asyncio.sleep(reply.delay)
            payload = self._payload(reply, request)
            if reply.behaviour == "trickle":
                for index in range(len(payload)):
                    writer.write(payload[index : index + 1])
                    await writer.drain()
                    await asyncio.sleep(reply.trickle_interval)
            else:
                writer.write(payload)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._tasks.discard(task)
            writer.close()


class RefusingEndpoint:
    """A 127.0.0.1 port that is bound but not listening: every connection is refused.

    Holding the socket keeps the port from being reused while the test runs.
    """

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> RefusingEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class ServerPool:
    """Many servers at once (``with ServerPool.of(20, {"*": HANG}) as pool: pool.urls``)."""

    servers: list[LoopbackServer] = field(default_factory=list)

    @classmethod
    def of(cls, count: int, routes: Mapping[str, RouteValue]) -> ServerPool:
        return cls([LoopbackServer(routes) for _ in range(count)])

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.servers]

    def __enter__(self) -> ServerPool:
        for server in self.servers:
            server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self.servers:
            server.stop()


class EventsStandIn:
    """A Stellar RPC serving a fixed list of events the way ``getEvents`` does.

    Topic filters (each filter's ``topics`` is a list of segment lists; ``*``
    matches any one topic, and a filter matches only events with as many
    topics), ``type`` and ``contractIds``; ``startLedger`` or a ``cursor``
    (events strictly after it); ``pagination.limit`` (default 100, at most
    10,000). ``getHealth``, ``getNetwork`` and ``getLedgers`` answer from the
    same ledger range, so the escrow pager and the submission search can find
    their start ledger; ``getTransaction`` answers from ``transactions`` (hash ->
    result), else ``NOT_FOUND``. ``routes()`` gives the routes for a
    :class:`LoopbackServer`.
    """

    def __init__(
        self,
        events: Sequence[Mapping[str, Any]],
        *,
        oldest_ledger: int,
        latest_ledger: int,
        close_time: Callable[[int], datetime],
        passphrase: str = "Test SDF Network ; September 2015",
        transactions: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.transactions = dict(transactions or {})
        self.events = sorted((dict(e) for e in events), key=lambda e: str(e["id"]))
        self.oldest_ledger = oldest_ledger
        self.latest_ledger = latest_ledger
        self.close_time = close_time
        self.passphrase = passphrase

    def _result(self, result: Mapping[str, Any]) -> Reply:
        return json_reply({"jsonrpc": "2.0", "id": 1, "result": dict(result)})

    def _window(self) -> dict[str, Any]:
        return {
            "latestLedger": self.latest_ledger,
            "latestLedgerCloseTime": unix(self.close_time(self.latest_ledger)),
            "oldestLedger": self.oldest_ledger,
            "oldestLedgerCloseTime": unix(self.close_time(self.oldest_ledger)),
        }

    @staticmethod
    def _matches(event: Mapping[str, Any], flt: Mapping[str, Any]) -> bool:
        if flt.get("type") not in (None, event.get("type")):
            return False
        if flt.get("contractIds") and event.get("contractId") not in flt["contractIds"]:
            return False
        topics = flt.get("topics")
        if not topics:
            return True
        have = event["topic"]
        return any(
            len(segments) == len(have)
            and all(s == "*" or s == t for s, t in zip(segments, have, strict=True))
            for segments in topics
        )

    def get_events(self, request: Request) -> Reply:
        params = request.json().get("params") or {}
        page = params.get("pagination") or {}
        limit = min(int(page.get("limit") or 100), 10_000)
        filters = params.get("filters") or [{}]
        cursor = page.get("cursor")
        if cursor:
            after = [e for e in self.events if str(e["id"]) > cursor]
        else:
            start = int(params["startLedger"])
            if start < self.oldest_ledger or start > self.latest_ledger:
                return json_reply(
                    {
                        "jsonrpc": "2.0",
                        "id": 1,
                        "error": {
                            "code": -32600,
                            "message": f"startLedger must be between the oldest ledger: "
                            f"{self.oldest_ledger} and the latest ledger: {self.latest_ledger}",
                        },
                    }
                )
            after = [e for e in self.events if int(e["ledger"]) >= start]
        chosen = [e for e in after if any(self._matches(e, f) for f in filters)][:limit]
        # A full page ends at its last event; a short one at the latest ledger scanned.
        end = (
            str(chosen[-1]["id"])
            if len(chosen) == limit
            else f"{(self.latest_ledger + 1) << 32:019d}-0000000000"
        )
        return self._result({"events": chosen, "cursor": end, **self._window()})

    def get_transaction(self, request: Request) -> Reply:
        """The result given for the hash, else NOT_FOUND with the retention window."""
        tx_hash = request.json()["params"]["hash"]
        found = self.transactions.get(tx_hash)
        if found is not None:
            return self._result(found)
        return self._result({"status": "NOT_FOUND", "txHash": tx_hash, **self._window()})

    def get_ledgers(self, request: Request) -> Reply:
        start = int(request.json()["params"]["startLedger"])
        ledger = {"sequence": start, "ledgerCloseTime": unix(self.close_time(start))}
        return self._result({"ledgers": [ledger], **self._window()})

    def routes(self) -> dict[str, Any]:
        return {
            "RPC getHealth": lambda _r: self._result({"status": "healthy", **self._window()}),
            "RPC getNetwork": lambda _r: self._result(
                {"passphrase": self.passphrase, "protocolVersion": 23}
            ),
            "RPC getLatestLedger": lambda _r: self._result(
                {
                    "id": "00" * 32,
                    "sequence": self.latest_ledger,
                    "protocolVersion": 23,
                    "closeTime": unix(self.close_time(self.latest_ledger)),
                }
            ),
            "RPC getLedgers": self.get_ledgers,
            "RPC getEvents": self.get_events,
            "RPC getTransaction": self.get_transaction,
        }
