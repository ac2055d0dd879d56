"""chargenet's own OCPP names (actions, message types) are the `ocpp` package's, without importing it.

`ocpp.v16.enums` loads the whole `ocpp.v16` package and `ocpp.messages` loads jsonschema: neither
may be imported before a frame is decoded or validated (issue 21, cold start).
"""

import subprocess
import sys

import ocpp.messages
from ocpp.v16.enums import Action as OcppAction

from chargenet.ocpp.actions import Action
from chargenet.ocpp.codec import MessageType


def test_every_action_is_the_ocpp_16_action_of_the_same_member_name_and_value():
    assert {a.name: a.value for a in Action} == {a.name: OcppAction[a.name].value for a in Action}


def test_an_action_compares_and_hashes_as_the_packages_own():
    assert Action.meter_values == OcppAction.meter_values
    assert OcppAction.meter_values in frozenset(Action)


def test_message_types_are_numbered_and_named_as_the_packages():
    assert {m.name: m.value for m in MessageType} == {
        m.name: getattr(ocpp.messages.MessageType, m.name) for m in MessageType
    }


def test_importing_the_codec_router_and_commands_loads_neither_ocpp_nor_jsonschema():
    probe = (
        "import sys, chargenet.ocpp.actions, chargenet.ocpp.router, chargenet.ocpp.codec\n"
        "import chargenet.services.commands\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ocpp', 'jsonschema')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
