"""A small threaded HTTP server for the local stack's fronts (API Gateway, Stripe checkout).

Each front is a function from `Request` to `Response`, so it can be tested without sockets;
this module only moves bytes. Bound to 127.0.0.1: nothing here is meant for the network.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("chargenet.local.http")


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query string, still percent-encoded
    query: str  # the raw query string
    headers: dict[str, str]  # lower-cased names; repeated headers joined with ","
    body: bytes = b""
    client_ip: str = "127.0.0.1"

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)  # a list: Set-Cookie may repeat


def json_response(status: int, payload: Any, headers: Iterable[tuple[str, str]] = ()) -> Response:
    return Response(status, json.dumps(payload).encode(), [("Content-Type", "application/json"), *headers])


Handle = Callable[[Request], Response]


def read_request(handler: BaseHTTPRequestHandler) -> Request:
    """The request `handler` is serving, body read."""
    url = urlsplit(handler.path)
    headers: dict[str, str] = {}
    for name, value in handler.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
    return Request(handler.command, url.path, url.query, headers, body, handler.client_address[0])


def _handler_for(handle: Handle) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            request = read_request(self)
            try:
                response = handle(request)
            except Exception:  # a bug in a front must not kill the connection silently
                log.exception("%s %s failed", self.command, request.path)
                response = json_response(500, {"message": "Internal Server Error"})
            self.send_response(response.status)
            for name, value in response.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per request would drown the stack log

    return Handler


class HttpServer:
    def __init__(self, handle: Handle, port: int = 0) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(handle))
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
