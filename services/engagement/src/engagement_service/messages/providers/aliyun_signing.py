"""Alibaba Cloud's RPC request signature (SignatureVersion 1.0, HMAC-SHA1), as its "Signature
mechanism" documentation gives it for RPC APIs such as Dysmsapi's ``SendSms``:

1. every parameter but ``Signature`` sorted by name (byte order);
2. names and values percent-encoded as RFC 3986 unreserved only (``A-Z a-z 0-9 - _ . ~`` kept,
   a space as ``%20``, ``*`` as ``%2A``, UTF-8 bytes as ``%XY``), joined ``name=value`` by ``&``
   into the canonicalised query string;
3. StringToSign = ``METHOD & percentEncode("/") & percentEncode(canonicalised)``;
4. Signature = Base64(HMAC-SHA1(key = AccessKeySecret + "&", StringToSign)).

The documentation's SendSms example (testId / testSecret, 2017-07-12T02:42:19Z) signs to
``zJDF+Lrzhj/ThnlvIToysFRq6t4=``; the provider's tests check that vector.
"""

import base64
import hashlib
import hmac
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote

SIGNATURE_METHOD = "HMAC-SHA1"
SIGNATURE_VERSION = "1.0"


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as Alibaba Cloud's signature requires (``~`` kept, space ``%20``)."""
    return quote(value, safe="-_.~")


def canonicalized_query(params: Mapping[str, str]) -> str:
    """The sorted, encoded ``name=value&...`` string, ``Signature`` itself left out."""
    return "&".join(
        f"{percent_encode(name)}={percent_encode(params[name])}"
        for name in sorted(params)
        if name != "Signature"
    )


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonicalized_query(params))}"


def signature(method: str, params: Mapping[str, str], *, secret: str) -> str:
    """The ``Signature`` parameter of a request with ``params`` sent by ``method``."""
    digest = hmac.new(
        (secret + "&").encode(), string_to_sign(method, params).encode(), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode()


def timestamp(now: datetime) -> str:
    """The ``Timestamp`` parameter: ISO 8601 in UTC to the second, ``2017-07-12T02:42:19Z``."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def signed_params(
    action_params: Mapping[str, str],
    *,
    access_key_id: str,
    secret: str,
    method: str,
    now: datetime,
    nonce: str | None = None,
) -> dict[str, str]:
    """``action_params`` (Action, Version, the action's own) with the common parameters and
    their ``Signature``; a new ``SignatureNonce`` each time (the platform refuses a repeat)."""
    params = {
        **action_params,
        "Format": "JSON",
        "AccessKeyId": access_key_id,
        "SignatureMethod": SIGNATURE_METHOD,
        "SignatureVersion": SIGNATURE_VERSION,
        "SignatureNonce": nonce or uuid.uuid4().hex,
        "Timestamp": timestamp(now),
    }
    params["Signature"] = signature(method, params, secret=secret)
    return params
