"""A small fault-injecting HTTP proxy for the tests: it sits in front of a real OpenAI-compatible
server and, when told to, answers a request with a fault instead of passing it on.

    proxy = FaultProxy({"big": "http://127.0.0.1:8001/v1", "small": "http://127.0.0.1:8002/v1"}).start()
    # proxy.url is the clients' base_url; a request goes to the server of the model it names
    proxy.inject("429", model="smollm2-135m-instruct", retry_after=1)
    ...
    proxy.stop()

Faults (each injected fault is used by the next matching request, then gone):

- ``"429"``: ``429 Too Many Requests`` with ``Retry-After`` and an OpenAI-style error body;
- ``"500"``: ``500 Internal Server Error`` with an OpenAI-style error body;
- ``"timeout"``: the proxy reads the request and says nothing for ``hold`` seconds, then closes;
- ``"drop_stream"``: the request goes to the server; the proxy relays the response's first
  ``after_events`` server-sent events and then closes the connection in the middle of the
  chunked body (the client sees a broken stream, not an ended one).

Every request is logged (:attr:`FaultProxy.log`): when it came, its JSON body, the model it
named, whether it asked for a stream, the fault it got, and the ``usage`` the server reported (parsed from the JSON
body or from the stream's events), so a test can compare what a cost ledger recorded with what
the server said. Only the standard library is used; one thread per connection.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULTS = ("429", "500", "timeout", "drop_stream")
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "te", "trailer", "upgrade"}


@dataclass
class Fault:
    kind: str
    model: str | None = None
    retry_after: float = 1.0
    hold: float = 3.0
    after_events: int = 0


@dataclass
class Request:
    at: float
    path: str
    model: str | None
    stream: bool
    fault: str | None
    status: int | None = None
    usage: dict[str, Any] | None = None
    events: int = 0
    payload: dict[str, Any] = field(default_factory=dict)  # the request's JSON body


@dataclass
class _State:
    faults: list[Fault] = field(default_factory=list)
    log: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    closing: threading.Event = field(default_factory=threading.Event)


class FaultProxy:
    """A proxy on a free 127.0.0.1 port in front of one server (``http://host:port[/v1]``) or of
    one server per model (``{model: url}``, the first also takes requests that name no model);
    every url has the same path prefix (e.g. ``/v1``), which the proxy's own :attr:`url` keeps."""

    def __init__(self, upstream: str | Mapping[str, str]) -> None:
        urls = {None: upstream} if isinstance(upstream, str) else dict(upstream)
        parsed = {name: urllib.parse.urlsplit(url) for name, url in urls.items()}
        prefixes = {p.path.rstrip("/") for p in parsed.values()}
        if len(prefixes) != 1:
            raise ValueError(f"the upstream urls have different paths: {sorted(prefixes)}")
        self.prefix = prefixes.pop()
        self.upstreams = {name: (p.hostname or "127.0.0.1", p.port or 80) for name, p in parsed.items()}
        self.default_upstream = next(iter(self.upstreams.values()))
        self.state = _State()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ control
    @property
    def url(self) -> str:
        assert self._server is not None, "start() the proxy first"
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.prefix}"

    @property
    def log(self) -> list[Request]:
        with self.state.lock:
            return list(self.state.log)

    def inject(self, kind: str, *, model: str | None = None, times: int = 1, retry_after: float = 1.0,
               hold: float = 3.0, after_events: int = 0) -> None:
        """The next ``times`` requests (for ``model``, or any) get fault ``kind`` (see the module doc)."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULTS)}")
        with self.state.lock:
            self.state.faults.extend(
                Fault(kind, model=model, retry_after=retry_after, hold=hold, after_events=after_events)
                for _ in range(times)
            )

    def reset(self) -> None:
        """Forget pending faults and the log."""
        with self.state.lock:
            self.state.faults.clear()
            self.state.log.clear()

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.state.closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _take(self, model: str | None) -> Fault | None:
        with self.state.lock:
            for i, fault in enumerate(self.state.faults):
                if fault.model is None or fault.model == model:
                    return self.state.faults.pop(i)
        return None


class _Handler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # quiet: the proxy's own log is FaultProxy.log

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._forward(b"")

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        self._forward(self.rfile.read(length) if length else b"")

    def _error(self, status: int, message: str, kind: str, extra: dict[str, str]) -> None:
        body = json.dumps({"error": {"message": message, "type": kind, "code": status}}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def _forward(self, body: bytes) -> None:
        state = self.owner.state
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            payload = {}
        model = payload.get("model") if isinstance(payload, dict) else None
        stream = bool(isinstance(payload, dict) and payload.get("stream"))
        fault = self.owner._take(model) if self.command == "POST" else None
        entry = Request(at=time.monotonic(), path=self.path, model=model, stream=stream,
                        fault=fault.kind if fault else None, payload=payload if isinstance(payload, dict) else {})
        with state.lock:
            state.log.append(entry)
        self.close_connection = True
        if fault is not None and fault.kind == "429":
            entry.status = 429
            self._error(429, "Rate limit reached (injected by the test proxy)", "rate_limit_exceeded",
                        {"Retry-After": f"{fault.retry_after:g}"})
            return
        if fault is not None and fault.kind == "500":
            entry.status = 500
            self._error(500, "The server had an error (injected by the test proxy)", "server_error", {})
            return
        if fault is not None and fault.kind == "timeout":
            state.closing.wait(fault.hold)  # say nothing; the client's timeout fires first
            self._abort()
            return
        host, port = self.owner.upstreams.get(model, self.owner.default_upstream)
        conn = http.client.HTTPConnection(host, port, timeout=300)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            entry.status = resp.status
            if resp.getheader("Content-Type", "").startswith("text/event-stream"):
                self._relay_stream(resp, entry, fault)
            else:
                data = resp.read()
                try:
                    entry.usage = json.loads(data).get("usage")
                except (ValueError, AttributeError):
                    pass
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in HOP_HEADERS:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)
        finally:
            conn.close()

    def _relay_stream(self, resp: http.client.HTTPResponse, entry: Request, fault: Fault | None) -> None:
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in HOP_HEADERS:
                self.send_header(k, v)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()
        buffer = b""
        while True:
            line = resp.readline()
            if not line:
                break
            buffer += line
            if line not in (b"\n", b"\r\n"):
                continue
            event, buffer = buffer, b""  # one whole server-sent event, up to its blank line
            for raw in event.splitlines():
                if raw.startswith(b"data:") and raw[5:].strip() not in (b"", b"[DONE]"):
                    entry.events += 1
                    try:
                        usage = json.loads(raw[5:]).get("usage")
                    except (ValueError, AttributeError):
                        usage = None
                    if usage:
                        entry.usage = usage
            if fault is not None and fault.kind == "drop_stream" and entry.events > fault.after_events:
                entry.events -= 1  # this event never reached the client
                self._abort()
                return
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
            self.wfile.flush()
        if buffer:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(buffer), buffer))
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _abort(self) -> None:
        """Close the client's connection now, mid-response (no chunked terminator, no reply)."""
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close_connection = True


# --------------------------------------------------------------------------- what the HTTP tests check
PRICES = {  # dollars per million tokens: stand-ins, so that costs are not all zero
    "qwen2.5-coder-1.5b-instruct": (2.5, 10.0),
    "smollm2-135m-instruct": (0.15, 0.6),
}


def cost_of(model: str, input_tokens: int, output_tokens: int) -> Decimal:
    """What :data:`PRICES` charge for these tokens of ``model``."""
    pin, pout = PRICES[model]
    return (Decimal(str(pin)) * input_tokens + Decimal(str(pout)) * output_tokens) / Decimal(1_000_000)


def assert_server_usage(record, request) -> None:
    """The record's tokens are the server's reported usage, priced at :data:`PRICES`."""
    assert request.usage, f"the server reported no usage for {request}"
    assert not record.failed and not record.tokens_estimated
    assert (record.input_tokens, record.output_tokens) == (
        request.usage["prompt_tokens"], request.usage["completion_tokens"])
    assert record.cost == cost_of(record.model, record.input_tokens, record.output_tokens)
