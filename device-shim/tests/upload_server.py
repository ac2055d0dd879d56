"""A stand-in for GetDiagnostics' pre-signed upload URL: an HTTP server on 127.0.0.1 keeping every PUT."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class UploadServer:
    def __init__(self) -> None:
        self.uploads: list[tuple[str, bytes]] = []
        # What the server answers a PUT with; anything but 2xx is a failed upload for the charger.
        self.status = 200
        # Cleared: PUTs wait until it is set again, to keep an upload under way.
        self.open = threading.Event()
        self.open.set()
        self._received = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())

    def serve(self) -> None:
        # A short poll interval: shutdown() waits for the next poll.
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()

    def close(self) -> None:
        self.open.set()
        self._server.shutdown()
        self._server.server_close()

    def url(self, path: str) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/{path.lstrip('/')}?X-Amz-Signature=fake"

    def wait_for_uploads(self, count: int, timeout: float = 5.0) -> list[tuple[str, bytes]]:
        with self._received:
            if not self._received.wait_for(lambda: len(self.uploads) >= count, timeout):
                raise AssertionError(f"{len(self.uploads)} uploads arrived, not {count}")
            return list(self.uploads)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                server.open.wait(10)
                with server._received:
                    server.uploads.append((self.path, body))
                    server._received.notify_all()
                self.send_response(server.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


@contextlib.contextmanager
def upload_server() -> Iterator[UploadServer]:
    server = UploadServer()
    server.serve()
    try:
        yield server
    finally:
        server.close()
