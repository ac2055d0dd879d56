"""An IoT Data endpoint for boto3's `iot-data` client: `publish` reaches mosquitto.

Functions call `boto3.client("iot-data").publish(...)` exactly as in the cloud;
AWS_ENDPOINT_URL_IOT_DATA_PLANE points them here.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

Publish = Callable[[str, bytes, int], None]


def _handler_for(publish: Publish) -> type[BaseHTTPRequestHandler]:
    class IotDataHandler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            url = urlsplit(self.path)
            if not url.path.startswith("/topics/"):
                self._reply(404, {"message": f"no such operation: {url.path}"})
                return
            topic = unquote(url.path[len("/topics/") :])
            qos = int(parse_qs(url.query).get("qos", ["0"])[0])
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                publish(topic, body, qos)
            except Exception as exc:  # the broker is down or refused: tell the caller
                self._reply(503, {"message": f"publish failed: {exc}"})
                return
            self._reply(200, {})

        def _reply(self, status: int, body: dict[str, str]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per reply would drown the stack log

    return IotDataHandler


class IotDataEndpoint:
    def __init__(self, publish: Publish, port: int = 0) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(publish))
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
