"""Frames to chargers through the IoT Data API (locally: the stack's endpoint, same call)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from chargenet.adapters.unavailable import raises_store_unavailable
from chargenet.ports.messaging import ChargerChannel


def reply_topic(charger_id: str) -> str:
    return f"chargers/{charger_id}/out"


@raises_store_unavailable
class IotDataChannel(ChargerChannel):
    @cached_property
    def _client(self) -> Any:
        import boto3  # only when the first frame goes out: keeps cold start lean

        # AWS_ENDPOINT_URL_IOT_DATA_PLANE (template.yaml) points boto3 at the account's ATS endpoint.
        return boto3.client("iot-data")

    def send(self, charger_id: str, frame: str) -> None:
        self._client.publish(topic=reply_topic(charger_id), qos=1, payload=frame.encode())
