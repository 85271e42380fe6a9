"""Decoding request bodies: JSON, YAML (apply patches, `kubectl create` of YAML) and protobuf.

Every decoder refuses what Kubernetes' own decoders refuse (NaN and infinity, which JSON cannot
carry) with a 400 `Status`, so the layers above only ever see plain JSON values.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import yaml

from meshcanary.sandbox.apiserver import errors


def decode_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError as exc:
        raise errors.bad_request(f"the body of the request could not be decoded: {exc}") from None


def decode_yaml(raw: bytes) -> Any:
    try:
        value = yaml.safe_load(raw.decode())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise errors.bad_request(f"error decoding YAML: {exc}") from None
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise errors.bad_request(f"the YAML body is not valid JSON data: {exc}") from None
    return value


def decode_protobuf(raw: bytes) -> Any:
    """kubectl's typed clients (`create namespace`, `create configmap`, ...) send protobuf."""
    from meshcanary.sandbox.apiserver import protobuf

    try:
        return protobuf.decode(raw)
    except protobuf.ProtobufError as exc:
        raise errors.ApiError(
            415, "UnsupportedMediaType", f"cannot decode the protobuf body: {exc}"
        ) from None
