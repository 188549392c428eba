"""The test receiver itself: it must reject what a real collector rejects, or other tests prove nothing."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

import pytest

from tests.otlp_receiver import OTLPReceiver


def post(receiver: OTLPReceiver, body: bytes, content_type: str, path: str = "/v1/traces") -> int:
    conn = http.client.HTTPConnection("127.0.0.1", int(receiver.http_endpoint.rsplit(":", 1)[1]), timeout=5)
    conn.request("POST", path, body=body, headers={"Content-Type": content_type})
    status = conn.getresponse().status
    conn.close()
    return status


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver(grpc=False) as r:
        yield r


def test_garbage_and_wrong_requests_are_refused_and_record_no_span(receiver: OTLPReceiver) -> None:
    assert post(receiver, b"\xff\x00garbage", "application/x-protobuf") == 400
    assert post(receiver, b"{not json", "application/json") == 400
    assert post(receiver, b"{}", "text/plain") == 400
    assert post(receiver, b"", "application/x-protobuf", path="/v1/metrics") == 404
    assert receiver.spans == []
    assert [r.status for r in receiver.requests] == [400, 400, 400, 404]


def test_json_ids_are_hex_as_otlp_json_requires(receiver: OTLPReceiver) -> None:
    span = {
        "traceId": "0af7651916cd43dd8448eb211c80319c",
        "spanId": "b7ad6b7169203331",
        "name": "op",
        "kind": 2,
        "startTimeUnixNano": "1",
        "endTimeUnixNano": "2",
        "attributes": [{"key": "k", "value": {"intValue": "7"}}],
    }
    body = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {"name": "s"}, "spans": [span]}]}]}
    assert post(receiver, json.dumps(body).encode(), "application/json") == 200
    (got,) = receiver.wait_for_spans(1)
    assert (got.trace_id, got.span_id, got.attributes, got.kind) == (
        span["traceId"],
        span["spanId"],
        {"k": 7},
        2,
    )
    span["traceId"] = "not-hex"
    assert post(receiver, json.dumps(body).encode(), "application/json") == 400


def test_wait_for_spans_fails_loudly_when_nothing_comes(receiver: OTLPReceiver) -> None:
    with pytest.raises(AssertionError, match="expected 1 spans"):
        receiver.wait_for_spans(1, timeout=0.2)
