"""The cloud certificate is the shim's: a charger behind the gateway cannot obtain one.

Were its SignCertificate relayed, the backend would sign the charger's own key as the charger's
IoT identity, and the charger could connect to IoT Core directly, past every filter here. A frame
refuse_shim_messages answers is never relayed (test_gateway.py's vendor-id case drives that path;
tests/integration/test_rotation_e2e.py drives a SignCertificate through the gateway to the stack)."""

import json

from chargenet_shim.gateway import refuse_shim_messages


def test_a_chargers_sign_certificate_is_answered_not_supported_by_the_gateway():
    refusal = json.loads(refuse_shim_messages('[2, "s-1", "SignCertificate", {"csr": "x"}]') or "null")
    assert refusal[:3] == [4, "s-1", "NotSupported"]


def test_the_clouds_answers_and_other_calls_still_pass():
    assert refuse_shim_messages('[3, "s-1", {"status": "Accepted"}]') is None
    assert refuse_shim_messages('[2, "h-1", "Heartbeat", {}]') is None
