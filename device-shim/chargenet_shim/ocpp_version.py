"""The OCPP versions a charger behind the shim speaks, named as their WebSocket subprotocols are.

The cloud layer's chargenet.ocpp.versions.OcppVersion, which this package cannot import: a unit
test holds the two equal (device-shim/tests/test_credentials.py). A charger's version decides its
ingest topic (credentials.ChargerCredentials.ingest_topic_for) and the words of everything the
shim says to it or for it.
"""

from __future__ import annotations

from enum import StrEnum
from types import ModuleType

from ocpp.v16 import call as call16
from ocpp.v16 import call_result as call_result16
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as call_result201

# OCPP-J 1.6 (section 4.2.3) spells two codes its own way; 2.0.1 (section 4.3) corrected them.
# The ocpp package raises the 2.0.1 spelling whichever version it validated for.
_SPELT_IN_16 = {
    "FormatViolation": "FormationViolation",
    "OccurrenceConstraintViolation": "OccurenceConstraintViolation",
}
_SPELT_IN_201 = {spelt_16: spelt_201 for spelt_201, spelt_16 in _SPELT_IN_16.items()}


class OcppVersion(StrEnum):
    V16 = "ocpp1.6"
    V201 = "ocpp2.0.1"

    @property
    def schemas(self) -> str:
        """The version as the `ocpp` package names its schema folders ("1.6", "2.0.1")."""
        return self.value.removeprefix("ocpp")

    @property
    def calls(self) -> ModuleType:
        """The `ocpp` package's CALL payload classes for this version (ocpp.v16.call, ocpp.v201.call)."""
        module: ModuleType = call201 if self is OcppVersion.V201 else call16
        return module

    @property
    def call_results(self) -> ModuleType:
        module: ModuleType = call_result201 if self is OcppVersion.V201 else call_result16
        return module

    def error_code(self, code: str) -> str:
        """A CALLERROR code as this version spells it."""
        spelling = _SPELT_IN_201 if self is OcppVersion.V201 else _SPELT_IN_16
        return spelling.get(code, code)
