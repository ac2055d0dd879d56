"""The shim's frame limit is the backend's, and its refusal reads as the backend's (issue 16)."""

import json
from pathlib import Path

import pytest
from ocpp.exceptions import GenericError

from chargenet.ocpp import codec
from chargenet.ocpp.versions import OcppVersion
from chargenet_local.template import load
from chargenet_shim.frame_limit import (
    MAX_FRAME_BYTES,
    FrameTooLarge,
    check_frame_size,
    frame_bytes,
    oversized,
)

ROOT = Path(__file__).resolve().parents[2]


def data_transfer(size: int, message_id: str = "big-1") -> str:
    """A DataTransfer CALL of exactly `size` bytes."""
    empty = json.dumps(
        [2, message_id, "DataTransfer", {"vendorId": "ACME", "data": ""}], separators=(",", ":")
    )
    frame = empty.replace('"data":""', f'"data":"{"x" * (size - len(empty))}"')
    assert frame_bytes(frame) == size
    return frame


def test_the_limit_is_the_one_the_template_gives_the_ingest_function():
    template = load(ROOT / "template.yaml", region="us-east-1", overrides={"IotDataEndpoint": "https://x"})
    environment = template.resources["OcppIngestFunction"]["Properties"]["Environment"]["Variables"]

    assert int(template.resolve(environment["MAX_FRAME_BYTES"])) == MAX_FRAME_BYTES == 64 * 1024


@pytest.mark.parametrize("version", list(OcppVersion))
@pytest.mark.parametrize("size", [MAX_FRAME_BYTES + 1, 140_000, 1_000_000])
def test_an_oversized_call_is_answered_with_the_backends_own_callerror(size, version):
    """The same in both versions: GenericError is 2.0.1's code for it too."""
    frame = data_transfer(size)

    with pytest.raises(codec.FrameRejected) as backend:
        codec.decode(frame.encode(), max_bytes=MAX_FRAME_BYTES, version=version)
    refused = oversized(frame)

    assert refused is not None
    assert refused.call_error() == backend.value.reply
    assert json.loads(refused.call_error())[:3] == [4, "big-1", "GenericError"]


def test_a_frame_at_the_limit_passes_and_one_byte_more_does_not():
    assert oversized(data_transfer(MAX_FRAME_BYTES)) is None
    assert oversized(data_transfer(MAX_FRAME_BYTES + 1)) is not None


def test_the_limit_counts_utf8_bytes_not_characters():
    # 3 bytes a character: a third as many characters as bytes, over the limit all the same.
    data = "€" * (MAX_FRAME_BYTES // 3)
    frame = json.dumps([2, "id-9", "DataTransfer", {"vendorId": "ACME", "data": data}], ensure_ascii=False)

    assert len(frame) < MAX_FRAME_BYTES
    assert oversized(frame) is not None
    with pytest.raises(FrameTooLarge):
        check_frame_size(frame)


def test_the_message_id_is_read_only_where_it_plainly_leads_the_frame():
    spaced = ' [ 2 ,\n "id-7" , "DataTransfer", {"data": "' + "x" * MAX_FRAME_BYTES + '"}]'
    id_elsewhere = '{"id": "id-8", "frame": [2, "id-8"], "data": "' + "x" * MAX_FRAME_BYTES + '"}'

    assert json.loads(oversized(spaced).call_error())[1] == "id-7"
    refused = oversized(id_elsewhere)
    assert (refused.kind, refused.message_id, refused.call_error()) == (None, None, None)
    assert "no readable message id" in str(refused)


@pytest.mark.parametrize(("kind", "name"), [(3, "CALLRESULT"), (4, "CALLERROR")])
def test_an_oversized_answer_is_not_answered(kind, name):
    frame = json.dumps([kind, "theirs-1", {"data": "x" * MAX_FRAME_BYTES}])

    refused = oversized(frame)

    assert refused.call_error() is None
    assert (
        str(refused)
        == f"{name} 'theirs-1' of {len(frame)} bytes, over the {MAX_FRAME_BYTES}-byte frame limit"
    )


def test_frame_too_large_is_the_generic_error_the_backend_would_have_answered():
    with pytest.raises(GenericError) as raised:
        check_frame_size(b"x" * (MAX_FRAME_BYTES + 1))

    assert isinstance(raised.value, FrameTooLarge)
    assert str(raised.value) == f"frame of {MAX_FRAME_BYTES + 1} bytes exceeds {MAX_FRAME_BYTES}"
    check_frame_size(b"x" * MAX_FRAME_BYTES)
