"""A local Alibaba Cloud SMS (Dysmsapi 2017-05-25) for tests: it speaks SendSms as the platform
documents it and pushes SmsReport and SmsUp to a callback URL.

It checks what the platform checks before it sends: the common parameters, the AccessKey, the
timestamp's freshness, a nonce used once, and the signature, recomputed here on its own (not with
the provider's code, so a mistake there cannot cancel out) and answered ``SignatureDoesNotMatch``
(HTTP 400) when it differs; then the signature name, the template and its parameters, and the
number (``isv.MOBILE_NUMBER_ILLEGAL``). It can be told to fail the next requests (throttle, 500,
a timeout) and records every request it took, signed or not.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

_BEIJING = ZoneInfo("Asia/Shanghai")
_MAINLAND_MOBILE = re.compile(r"^(\+?86)?1[3-9]\d{9}$")
_COMMON = (
    "AccessKeyId",
    "Format",
    "SignatureMethod",
    "SignatureNonce",
    "SignatureVersion",
    "Timestamp",
    "Signature",
    "Action",
    "Version",
)


def _encode(value: str) -> str:
    # Written from the documentation's table: unreserved characters kept, everything else %XY.
    return "".join(
        ch if re.fullmatch(r"[A-Za-z0-9\-_.~]", ch) else quote(ch, safe="") for ch in value
    )


def expected_signature(method: str, params: dict[str, str], secret: str) -> str:
    pairs = sorted((k, v) for k, v in params.items() if k != "Signature")
    canonical = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in pairs)
    to_sign = f"{method}&{_encode('/')}&{_encode(canonical)}"
    mac = hmac.new(f"{secret}&".encode(), to_sign.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


@dataclass
class Received:
    """One request the server answered, and how."""

    params: dict[str, str]
    code: str
    http_status: int
    biz_id: str | None = None
    at: float = field(default_factory=time.monotonic)


@dataclass
class FakeAliyunSms:
    access_key_id: str
    access_key_secret: str
    # Signature names and template codes the account has approved: code → its variables.
    sign_names: set[str]
    templates: dict[str, set[str]]
    received: list[Received] = field(default_factory=list)
    faults: deque[str] = field(default_factory=deque)
    timeout_seconds: float = 3.0
    # Numbers the platform refuses though they look like mobiles (a segment no carrier assigned).
    illegal_numbers: set[str] = field(default_factory=set)
    _nonces: set[str] = field(default_factory=set)

    def fail_next(self, *faults: str) -> None:
        """``throttle``, ``server_error`` or ``timeout``, one request each, in order."""
        self.faults.extend(faults)

    def sent(self) -> list[Received]:
        return [r for r in self.received if r.code == "OK"]

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.api_route("/", methods=["GET", "POST"])
        async def rpc(request: Request) -> JSONResponse:
            params = dict(request.query_params)
            if request.method == "POST":
                params.update({k: str(v) for k, v in (await request.form()).items()})
            # Recorded as it arrives: a request held past its client's timeout is still seen.
            received = Received(params=params, code="pending", http_status=0)
            self.received.append(received)
            status, answer = await self._answer(request.method, params)
            received.code, received.http_status = answer["Code"], status
            received.biz_id = answer.get("BizId")
            return JSONResponse(answer, status_code=status)

        return app

    async def _answer(self, method: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        request_id = str(uuid.uuid4()).upper()

        def error(status: int, code: str, message: str) -> tuple[int, dict[str, Any]]:
            return status, {
                "RequestId": request_id,
                "Code": code,
                "Message": message,
                "HostId": "dysmsapi.aliyuncs.com",
            }

        missing = [name for name in _COMMON if not params.get(name)]
        if missing:
            return error(400, "MissingParameter", f"missing {', '.join(missing)}")
        if params["AccessKeyId"] != self.access_key_id:
            return error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        if params["SignatureMethod"] != "HMAC-SHA1" or params["SignatureVersion"] != "1.0":
            return error(400, "InvalidParameter", "unsupported signature method")
        try:
            stamp = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return error(400, "InvalidTimeStamp.Format", "Specified time stamp is not valid.")
        if abs(datetime.now(UTC) - stamp) > timedelta(minutes=15):
            return error(400, "InvalidTimeStamp.Expired", "Specified time stamp is expired.")
        if params["Signature"] != expected_signature(method, params, self.access_key_secret):
            return error(
                400,
                "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation.",
            )
        if params["SignatureNonce"] in self._nonces:
            return error(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
        self._nonces.add(params["SignatureNonce"])
        if params["Action"] != "SendSms" or params["Version"] != "2017-05-25":
            return error(400, "InvalidAction.NotFound", "Specified api is not found")

        fault = self.faults.popleft() if self.faults else None
        if fault == "timeout":
            await asyncio.sleep(self.timeout_seconds)
            return error(503, "ServiceUnavailable", "too late")
        if fault == "server_error":
            return error(500, "InternalError", "The request processing has failed.")
        if fault == "throttle":
            return 200, {
                "RequestId": request_id,
                "Code": "isv.BUSINESS_LIMIT_CONTROL",
                "Message": "触发分钟级流控Permits:1",
            }

        ok = {"RequestId": request_id, "Message": "OK"}
        if params.get("SignName") not in self.sign_names:
            return 200, {**ok, "Code": "isv.SMS_SIGNATURE_ILLEGAL", "Message": "签名不合法"}
        variables = self.templates.get(params.get("TemplateCode", ""))
        if variables is None:
            return 200, {**ok, "Code": "isv.SMS_TEMPLATE_ILLEGAL", "Message": "模板不合法"}
        try:
            values = json.loads(params.get("TemplateParam") or "{}")
        except ValueError:
            return 200, {**ok, "Code": "isv.INVALID_JSON_PARAM", "Message": "JSON参数不合法"}
        if not isinstance(values, dict) or not variables <= set(values):
            return 200, {**ok, "Code": "isv.TEMPLATE_MISSING_PARAMETERS", "Message": "模板缺少变量"}
        numbers = params.get("PhoneNumbers", "").split(",")
        if not all(_MAINLAND_MOBILE.match(n) and n not in self.illegal_numbers for n in numbers):
            return 200, {**ok, "Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号"}
        biz_id = f"{int(time.time() * 1000) % 10**12}^{len(self.received)}"
        return 200, {**ok, "Code": "OK", "BizId": biz_id}

    # The platform's pushes, as its HTTP batch push sends them (JSON arrays, Beijing time).

    async def push_report(
        self, url: str, *, received: Received, success: bool = True, err_code: str = "DELIVERED"
    ) -> httpx.Response:
        now = datetime.now(_BEIJING).strftime("%Y-%m-%d %H:%M:%S")
        report = {
            "phone_number": received.params["PhoneNumbers"],
            "send_time": now,
            "report_time": now,
            "success": success,
            "err_code": err_code,
            "err_msg": "用户接收成功" if success else "失败",
            "sms_size": "1",
            "biz_id": received.biz_id,
            "out_id": received.params.get("OutId"),
        }
        return await _post(url, [report])

    async def push_reply(
        self, url: str, *, phone: str, content: str, sign_name: str
    ) -> httpx.Response:
        reply = {
            "phone_number": phone,
            "send_time": datetime.now(_BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
            "content": content,
            "sign_name": sign_name,
            "dest_code": "1234",
            "sequence_id": int(time.time()),
        }
        return await _post(url, [reply])


async def _post(url: str, body: list[dict[str, Any]]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(url, json=body)


class RunningServer:
    """The fake on a free local port, in a thread of its own (the services are other processes)."""

    def __init__(self, fake: FakeAliyunSms) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(
            uvicorn.Config(fake.app(), host="127.0.0.1", port=self.port, log_level="warning")
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> RunningServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the local SMS server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
