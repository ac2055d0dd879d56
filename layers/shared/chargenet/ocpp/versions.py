"""The OCPP versions chargenet speaks, named as the WebSocket subprotocols name them."""

from __future__ import annotations

from enum import StrEnum


class OcppVersion(StrEnum):
    V16 = "ocpp1.6"
    V201 = "ocpp2.0.1"

    @property
    def schemas(self) -> str:
        """The version as the `ocpp` package names its schema folders ("1.6", "2.0.1")."""
        return self.value.removeprefix("ocpp")
