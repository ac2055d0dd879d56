"""localstripe in its own process, bound to 127.0.0.1, and a small client for it.

localstripe's own CLI binds every interface and pickles its whole store to
/tmp/localstripe.pickle after each write (one file for every stack on the machine, slower
with each object, and missing every change made to an object in place). `python -m
chargenet_local.stripe_local --port N --state FILE` runs the same application bound to loopback
and keeps its store in the stack's home the way the stack keeps moto's (chargenet_local.persistence):
loaded at start, written atomically every SNAPSHOT_EVERY_S when a request could have changed it
(anything but GET), and when the process is stopped. The event loop writes it, so no request runs
while the store is pickled.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.parse import parse_qsl, urlencode
from urllib.request import Request, urlopen

from chargenet_local.children import die_with_parent

READY_TIMEOUT_S = 30
# The template's secrets for Stripe (logical ids): the API key and the webhook signing secret.
API_KEY_SECRET = "StripeApiKeySecret"
WEBHOOK_SECRET = "StripeWebhookSecret"
HTTP_TIMEOUT_S = 30


# ------------------------------------------------------------------ form encoding
def encode_form(params: Mapping[str, Any]) -> str:
    """Stripe's form encoding: nested keys in brackets, list items by index (as stripe-python)."""
    pairs: list[tuple[str, str]] = []

    def add(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                add(f"{prefix}[{key}]" if prefix else str(key), item)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                add(f"{prefix}[{index}]", item)
        elif isinstance(value, bool):
            pairs.append((prefix, "true" if value else "false"))
        elif value is not None:
            pairs.append((prefix, str(value)))

    add("", params)
    return urlencode(pairs)


_KEY_PART = re.compile(r"\[([^\]]*)\]")


def decode_form(text: str) -> dict[str, Any]:
    """The inverse: `a[b][0][c]=1&x[]=2` -> {"a": {"b": [{"c": "1"}]}, "x": ["2"]} (values stay strings)."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        head = key.split("[", 1)[0]
        parts = [head, *_KEY_PART.findall(key[len(head) :])]
        node = root
        for part, following in itertools.pairwise(parts):
            node = node.setdefault(part, {})
            if following == "":  # `x[]=`: append
                node[str(len(node))] = value
                break
        else:
            node[parts[-1]] = value
    return _lists(root)


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    items = {key: _lists(value) for key, value in node.items()}
    if items and all(key.isdigit() for key in items):
        return [items[key] for key in sorted(items, key=int)]
    return items


# ------------------------------------------------------------------ errors
class StripeError(Exception):
    """A Stripe-shaped API error: HTTP status and the `error` object."""

    def __init__(
        self, message: str, *, status: int = 400, kind: str = "invalid_request_error", **fields: str
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"error": {"type": kind, "message": message, **fields}}

    @classmethod
    def of(cls, status: int, body: dict[str, Any]) -> StripeError:
        """An error reply from localstripe, passed on as it came (after `normalise`)."""
        error = cls(str(body.get("error", {}).get("message", f"HTTP {status}")), status=status)
        error.body = body
        return error


# ------------------------------------------------------------------ the client
@dataclass(frozen=True)
class StripeReply:
    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def error_message(self) -> str:
        return str(self.body.get("error", {}).get("message", f"HTTP {self.status}"))


class StripeApi:
    """Form-encoded calls to a Stripe-compatible server (localstripe, behind the checkout front)."""

    def __init__(self, base: str, api_key: str) -> None:
        self.base = base.rstrip("/")
        self.api_key = api_key

    def call(self, method: str, path: str, params: Mapping[str, Any] | None = None) -> StripeReply:
        encoded = encode_form(params or {})
        headers = {"Authorization": f"Bearer {self.api_key}"}
        if method == "GET":
            return self.raw(method, path, encoded, b"", headers)
        return self.raw(method, path, "", encoded.encode(), headers)

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> StripeReply:
        return self.call("GET", path, params)

    def post(self, path: str, params: Mapping[str, Any] | None = None) -> StripeReply:
        return self.call("POST", path, params)

    def raw(self, method: str, path: str, query: str, body: bytes, headers: Mapping[str, str]) -> StripeReply:
        url = f"{self.base}{path}" + (f"?{query}" if query else "")
        request = Request(url, data=body if method != "GET" else None, method=method)
        for name, value in headers.items():
            request.add_header(name, value)
        if body:
            request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urlopen(request, timeout=HTTP_TIMEOUT_S) as reply:
                return StripeReply(reply.status, _json(reply.read()))
        except HTTPError as error:
            return StripeReply(error.code, _json(error.read()))


def _json(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data or b"{}")
    except ValueError:
        return {"error": {"type": "api_error", "message": data.decode(errors="replace")[:500]}}
    return value if isinstance(value, dict) else {"data": value}


# ------------------------------------------------------------------ the process
class LocalStripe:
    def __init__(self, port: int, log_path: Path, state_path: Path) -> None:
        self.port = port
        self._log_path = log_path
        self._state_path = state_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start it; `wait_ready` later, so its start-up overlaps the rest of the stack's."""
        with self._log_path.open("ab") as log_file:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "chargenet_local.stripe_local",
                    "--port",
                    str(self.port),
                    "--state",
                    str(self._state_path),
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"localstripe exited during start-up; see {self._log_path}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"localstripe did not listen on port {self.port} within {timeout_s}s")

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="localstripe bound to 127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", type=Path, required=True, help="the store's file (kept across restarts)")
    args = parser.parse_args(argv)
    from aiohttp import web
    from localstripe.server import app

    _keep_store(app, args.state)
    _invoice_any_customer()
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


def _keep_store(app: Any, path: Path) -> None:
    """The store loaded from `path`, and written back as the module docstring says."""
    import asyncio
    import pickle

    from aiohttp import web
    from localstripe.resources import store

    from chargenet_local.persistence import SNAPSHOT_EVERY_S, dumps, write_atomically

    store.dump_to_disk = lambda: None  # see the module docstring
    if path.exists():
        store.update(pickle.loads(path.read_bytes()))  # the stack's own file
    changed = False

    def save() -> None:
        nonlocal changed
        if changed:
            changed = False
            write_atomically(path, dumps(dict(store)))

    @web.middleware
    async def note_changes(request: web.Request, handler: Any) -> web.StreamResponse:
        nonlocal changed
        changed = changed or request.method != "GET"
        return await handler(request)

    async def save_periodically(_: web.Application) -> Any:
        async def loop() -> None:
            while True:
                await asyncio.sleep(SNAPSHOT_EVERY_S)
                save()

        task = asyncio.create_task(loop())
        yield
        task.cancel()
        save()  # stopped (SIGTERM): the last changes too

    app.middlewares.append(note_changes)
    app.cleanup_ctx.append(save_periodically)


def _invoice_any_customer() -> None:
    """Stripe invoices any customer's pending items; localstripe only customers with a
    Subscription ("No upcoming invoices for customer"). Patched in localstripe's own process:
    one-off invoices are how subscribers' monthly usage is billed."""
    from localstripe.resources import Customer, Invoice

    create = Invoice._api_create.__func__

    def api_create(
        cls: type[Invoice],
        customer: str | None = None,
        subscription: str | None = None,
        metadata: dict | None = None,
        description: str | None = None,
        pending_invoice_items_behavior: str | None = None,
        **kwargs: Any,
    ) -> Invoice:
        one_off = subscription is None and not kwargs and pending_invoice_items_behavior != "exclude"
        if one_off and not Customer._api_retrieve(customer).subscriptions._list:
            return cls(customer=customer, metadata=metadata, description=description)
        return create(
            cls,
            customer=customer,
            subscription=subscription,
            metadata=metadata,
            description=description,
            pending_invoice_items_behavior=pending_invoice_items_behavior,
            **kwargs,
        )

    Invoice._api_create = classmethod(api_create)


if __name__ == "__main__":
    main()
