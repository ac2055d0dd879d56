"""An IoT Data endpoint for boto3's `iot-data` client: `publish` reaches mosquitto.

Functions call `boto3.client("iot-data").publish(...)` exactly as in the cloud;
AWS_ENDPOINT_URL_IOT_DATA_PLANE points them here.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, unquote

from chargenet_local.httpserve import HttpServer, Request, Response, json_response

Publish = Callable[[str, bytes, int], None]


def publish_front(publish: Publish) -> Callable[[Request], Response]:
    """IoT Data's Publish operation: POST /topics/<topic>?qos=N with the payload as the body."""

    def handle(request: Request) -> Response:
        if request.method != "POST" or not request.path.startswith("/topics/"):
            return json_response(404, {"message": f"no such operation: {request.method} {request.path}"})
        topic = unquote(request.path[len("/topics/") :])
        qos = int(parse_qs(request.query).get("qos", ["0"])[0])
        try:
            publish(topic, request.body, qos)
        except Exception as exc:  # the broker is down or refused: tell the caller
            return json_response(503, {"message": f"publish failed: {exc}"})
        return json_response(200, {})

    return handle


class IotDataEndpoint(HttpServer):
    def __init__(self, publish: Publish, port: int = 0) -> None:
        super().__init__(publish_front(publish), port)
