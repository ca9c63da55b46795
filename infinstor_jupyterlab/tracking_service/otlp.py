"""What an OpenTelemetry span export (OTLP/HTTP, `POST /v1/traces`) writes to: its MLflow trace ids.

MLflow's client exports a trace's spans there, naming the experiment in a header. MLflow appends
spans to an existing trace of the same id wherever that trace lives, so the service must know
which traces an export touches before letting it through. The ids are derived exactly as MLflow's
ingest derives them (`Span.from_otel_proto`), from the protobuf or JSON encoding, compressed or not.
"""

from __future__ import annotations

import base64
import json

_HEX_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


class InvalidExport(ValueError):
    """The body is not an OTLP trace export MLflow would accept."""


def _hex_ids_to_base64(body: bytes) -> bytes:
    # OTLP/JSON writes ids in hex; protobuf's JSON mapping reads bytes fields as base64.
    data = json.loads(body)
    for resource_spans in data.get("resourceSpans", []) if isinstance(data, dict) else []:
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for name in _HEX_ID_FIELDS:
                    if span.get(name):
                        span[name] = base64.b64encode(bytes.fromhex(span[name])).decode("ascii")
    return json.dumps(data).encode()


def trace_ids_in_export(body: bytes, content_type: str | None, content_encoding: str | None) -> list[str]:
    """The MLflow trace ids of the spans in an OTLP trace export, each once, in order."""
    from google.protobuf.json_format import Parse
    from mlflow.entities.span import Span
    from mlflow.tracing.utils.otlp import decompress_otlp_body
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    media_type = (content_type or "").split(";")[0].strip()
    request = ExportTraceServiceRequest()
    try:
        if content_encoding:
            body = decompress_otlp_body(body, content_encoding.lower())
        if media_type == "application/json":
            Parse(_hex_ids_to_base64(body), request, ignore_unknown_fields=True)
        elif media_type == "application/x-protobuf":
            request.ParseFromString(body)
        else:
            raise InvalidExport(f"Invalid Content-Type {content_type!r}: expected application/x-protobuf or application/json")
        trace_ids = [
            Span.from_otel_proto(span).trace_id
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]
    except InvalidExport:
        raise
    except Exception as exc:  # every decoding failure means the same to the caller: not a valid export
        raise InvalidExport(f"Invalid OpenTelemetry trace export ({type(exc).__name__})") from None
    return list(dict.fromkeys(trace_ids))
