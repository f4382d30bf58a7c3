"""Alibaba Cloud SMS (Dysmsapi, API version 2017-05-25), from its documented HTTP API.

Sending: one ``SendSms`` per message, an RPC request POSTed form-encoded to the endpoint and
signed as aliyun_signing.py says. Alibaba Cloud sends only pre-approved templates, so our
template maps onto theirs (deploy/README.md says what an operator registers):

- ``TemplateCode``: the approved template's code (``SMS_…``), looked up in
  ``CRM_ALIYUN_SMS_TEMPLATE_CODES`` by our template's id first, then by its category; a
  message with neither is refused for good (``template_code_missing``);
- ``TemplateParam``: the placeholders' rendered values as JSON, under our placeholder names
  (``${customer_name}``, ``${form_of_address}``, ``${staff_name}``, ``${store}`` in theirs);
- ``SignName``: the sender signature without its brackets (the carrier shows 【店名】);
- ``OutId``: the message's id, the same on every attempt: a delivery report carries it back,
  so a message sent twice (a retry after a lost answer) is still matched.

Outcomes: ``Code`` ``OK`` is accepted under its ``BizId``; the codes below say what is tried
again and what is refused for good, as data; a timeout, a network error or a 5xx is tried again.

Callbacks: Alibaba Cloud pushes delivery reports (SmsReport) and replies (SmsUp) as JSON arrays
to the URLs configured in its console. Its HTTP push signs nothing, so each URL carries a secret
token (``CRM_ALIYUN_SMS_CALLBACK_TOKEN``) compared in constant time. A push is answered
``{"code": 0}`` once it is handled or deliberately ignored (a bad token, an unknown message, a
body that is not a report: logged), so the platform does not resend it forever; only our own
failure (the database down) is answered otherwise, and the platform tries again later.
"""

import hmac
import json
import logging
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import SecretStr

from engagement_service.config import Settings
from engagement_service.messages.providers.aliyun_signing import signed_params
from engagement_service.messages.providers.base import (
    CallbackSink,
    DeliveryReport,
    InboundReply,
    OutgoingMessage,
    SendAccepted,
    SendOutcome,
    SendRejected,
    SendRetryable,
)

log = logging.getLogger(__name__)

API_VERSION = "2017-05-25"
CALLBACK_PREFIX = "/sms/callbacks/aliyun"

# Refused for good: the number, the signature, the template or the content will not change by
# trying again.
PERMANENT_CODES = frozenset(
    {
        "isv.MOBILE_NUMBER_ILLEGAL",
        "isv.MOBILE_COUNT_OVER_LIMIT",
        "isv.DOMESTIC_NUMBER_NOT_SUPPORTED",
        "isv.SMS_SIGNATURE_ILLEGAL",
        "isv.SMS_SIGN_ILLEGAL",
        "isv.SMS_TEMPLATE_ILLEGAL",
        "isv.TEMPLATE_MISSING_PARAMETERS",
        "isv.TEMPLATE_PARAMS_ILLEGAL",
        "isv.INVALID_JSON_PARAM",
        "isv.INVALID_PARAMETERS",
        "isv.PARAM_LENGTH_LIMIT",
        "isv.PARAM_NOT_SUPPORT_URL",
        "isv.BLACK_KEY_CONTROL_LIMIT",
        "isv.SMS_CONTENT_ILLEGAL",
        "isv.EXTEND_CODE_ERROR",
    }
)
# Tried again after the worker's backoff: throttles (per number: isv.BUSINESS_LIMIT_CONTROL;
# per account: Throttling*) and the platform's own errors. A code in no set is tried again too,
# until the worker's last attempt.
RETRYABLE_CODES = frozenset(
    {
        "isv.BUSINESS_LIMIT_CONTROL",
        "isv.DAY_LIMIT_CONTROL",
        "Throttling",
        "Throttling.User",
        "Throttling.Api",
        "isp.SYSTEM_ERROR",
        "ServiceUnavailable",
        "InternalError",
        "SignatureNonceUsed",
    }
)
# The account or its key, not the message: tried again (failing them for good would lose every
# message of the outage) and logged as errors, for an operator fixes them (a payment, the key,
# the server's clock) without the message changing.
ACCOUNT_CODES = frozenset(
    {
        "isv.OUT_OF_SERVICE",
        "isv.AMOUNT_NOT_ENOUGH",
        "isv.ACCOUNT_ABNORMAL",
        "isv.ACCOUNT_NOT_EXISTS",
        "isv.PRODUCT_UN_SUBSCRIPT",
        "isp.RAM_PERMISSION_DENY",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "InvalidAccessKeyId.NotFound",
        "InvalidAccessKeyId.Inactive",
        "InvalidTimeStamp.Expired",
    }
)
# Times in the callbacks are Beijing time without a zone ("2017-01-01 00:00:00").
_PLATFORM_ZONE = ZoneInfo("Asia/Shanghai")
_RECEIVED = {"code": 0, "msg": "接收成功"}


def outcome_of(response: httpx.Response) -> SendOutcome:
    """What a SendSms answer means for the message (the mapping above)."""
    if response.status_code >= 500:
        return SendRetryable(
            reason=f"HTTP {response.status_code}", code=f"http_{response.status_code}"
        )
    try:
        answer = response.json()
        code = str(answer.get("Code") or "")
    except (ValueError, AttributeError):
        return SendRetryable(reason=f"unreadable answer (HTTP {response.status_code})")
    message = str(answer.get("Message") or "")
    if code == "OK" and answer.get("BizId"):
        return SendAccepted(provider_message_id=str(answer["BizId"]))
    if code in PERMANENT_CODES:
        return SendRejected(reason=message or code, code=code)
    if code in ACCOUNT_CODES:
        log.error("SendSms refused the account", extra={"fields": {"code": code, "msg": message}})
    elif code not in RETRYABLE_CODES:
        log.warning("unknown SendSms code, tried again", extra={"fields": {"code": code}})
    return SendRetryable(
        reason=message or code or "no code",
        code=code or None,
        retry_after_seconds=_retry_after(response),
    )


def platform_number(phone: str) -> str:
    """The number as SendSms takes it: a mainland mobile as its 11 digits, any other with its
    country code and no ``+`` (the customer file holds E.164, ``+8613912345678``)."""
    digits = "".join(c for c in phone if c.isdigit())
    if digits.startswith("0086"):
        digits = digits[2:]
    return digits[2:] if len(digits) == 13 and digits.startswith("861") else digits


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def _platform_time(value: Any) -> datetime | None:
    try:
        return datetime.strptime(str(value), "%Y-%m-%d %H:%M:%S").replace(tzinfo=_PLATFORM_ZONE)
    except ValueError:
        return None


def _reports(body: Any) -> list[DeliveryReport]:
    """SmsReport items: phone_number, success, biz_id, out_id, err_code, err_msg, report_time."""
    return [
        DeliveryReport(
            provider_message_id=str(item["biz_id"]) if item.get("biz_id") else None,
            out_id=str(item["out_id"]) if item.get("out_id") else None,
            delivered=item.get("success") is True,
            error_code=None if item.get("success") is True else str(item.get("err_code") or ""),
            error_reason=None if item.get("success") is True else str(item.get("err_msg") or ""),
            reported_at=_platform_time(item.get("report_time")),
        )
        for item in body
        if isinstance(item, dict)
    ]


def _replies(body: Any, *, now: datetime) -> list[InboundReply]:
    """SmsUp items: phone_number, content, sign_name, send_time (dest_code, sequence_id).

    Dated when the push arrives, not by ``send_time``: an opt-out is ordered against consents
    the customer file dates by our clock to the microsecond, and the platform's whole seconds
    would put a reply before a consent given earlier in the same second.
    """
    return [
        InboundReply(
            signature=str(item["sign_name"]),
            phone=str(item["phone_number"]),
            text=str(item.get("content") or ""),
            received_at=now,
        )
        for item in body
        if isinstance(item, dict) and item.get("sign_name") and item.get("phone_number")
    ]


class AliyunSmsProvider:
    """Sends by ``SendSms`` through one pooled client; receives SmsReport and SmsUp pushes."""

    name = "aliyun"

    def __init__(
        self,
        *,
        access_key_id: str,
        access_key_secret: SecretStr,
        endpoint: str,
        region_id: str,
        template_codes: dict[str, str],
        callback_token: SecretStr | None,
        timeout_seconds: float,
    ) -> None:
        self._key_id = access_key_id
        self._secret = access_key_secret
        self._endpoint = endpoint.rstrip("/") + "/"
        self._region_id = region_id
        self._template_codes = template_codes
        self._callback_token = callback_token
        self._client = httpx.AsyncClient(timeout=timeout_seconds)

    def template_code(self, message: OutgoingMessage) -> str | None:
        """Alibaba Cloud's approved template for the message: by our template, else category."""
        if message.template_id and message.template_id in self._template_codes:
            return self._template_codes[message.template_id]
        return self._template_codes.get(message.category)

    def request_params(self, message: OutgoingMessage, template_code: str) -> dict[str, str]:
        """SendSms's own parameters (the common ones and the signature are added when sent)."""
        return {
            "Action": "SendSms",
            "Version": API_VERSION,
            "RegionId": self._region_id,
            "PhoneNumbers": platform_number(message.phone),
            "SignName": message.signature.strip().strip("【】"),
            "TemplateCode": template_code,
            "TemplateParam": json.dumps(
                message.parameters, ensure_ascii=False, separators=(",", ":")
            ),
            "OutId": message.out_id,
        }

    async def send(self, message: OutgoingMessage) -> SendOutcome:
        template_code = self.template_code(message)
        if template_code is None:
            return SendRejected(
                reason=f"no Alibaba Cloud template registered for template {message.template_id} "
                f"or category {message.category}",
                code="template_code_missing",
            )
        params = signed_params(
            self.request_params(message, template_code),
            access_key_id=self._key_id,
            secret=self._secret.get_secret_value(),
            method="POST",
            now=datetime.now(UTC),
        )
        try:
            response = await self._client.post(self._endpoint, data=params)
        except httpx.TimeoutException:
            # It may have gone: the retry carries the same OutId, and reports match either.
            return SendRetryable(reason="SendSms timed out", code="timeout")
        except httpx.HTTPError as exc:
            return SendRetryable(reason=f"SendSms unreachable: {exc!r}", code="network")
        outcome = outcome_of(response)
        log.info(
            "SendSms answered",
            extra={
                "fields": {
                    "message_id": message.out_id,
                    "status": response.status_code,
                    "outcome": type(outcome).__name__,
                    "code": getattr(outcome, "code", "OK"),
                }
            },
        )
        return outcome

    def _token_ok(self, token: str) -> bool:
        expected = self._callback_token.get_secret_value() if self._callback_token else ""
        return bool(expected) and hmac.compare_digest(token.encode(), expected.encode())

    def callback_routes(self, sink: CallbackSink) -> APIRouter | None:
        # Out of the API's OpenAPI document and its access policy: no principal calls these,
        # the platform does, authenticated by the token (the gateway forwards them as such).
        router = APIRouter(prefix=CALLBACK_PREFIX, include_in_schema=False)

        async def body_of(request: Request, token: str, kind: str) -> list[Any] | None:
            if not self._token_ok(token):
                log.warning(
                    "an SMS callback with a bad token, ignored", extra={"fields": {"kind": kind}}
                )
                return None
            try:
                body = await request.json()
            except ValueError:
                body = None
            if not isinstance(body, list):
                log.warning(
                    "an SMS callback that is not a JSON array, ignored",
                    extra={"fields": {"kind": kind}},
                )
                return None
            return body

        @router.post("/{token}/reports")
        async def delivery_reports(token: str, request: Request) -> JSONResponse:
            body = await body_of(request, token, "SmsReport")
            for report in _reports(body or []):
                # A report for no known message is ignored (and logged) by the sink.
                await sink.delivery_reported(report)
            return JSONResponse(_RECEIVED)

        @router.post("/{token}/replies")
        async def inbound_replies(token: str, request: Request) -> JSONResponse:
            body = await body_of(request, token, "SmsUp")
            for reply in _replies(body or [], now=datetime.now(UTC)):
                await sink.inbound_received(reply)
            return JSONResponse(_RECEIVED)

        return router

    async def aclose(self) -> None:
        await self._client.aclose()


def create_provider(settings: Settings) -> AliyunSmsProvider:
    """The provider from ``CRM_ALIYUN_SMS_*``; the key must be configured to select it."""
    if not settings.aliyun_sms_access_key_id or settings.aliyun_sms_access_key_secret is None:
        raise ValueError(
            "CRM_SMS_PROVIDER=aliyun needs CRM_ALIYUN_SMS_ACCESS_KEY_ID and "
            "CRM_ALIYUN_SMS_ACCESS_KEY_SECRET"
        )
    return AliyunSmsProvider(
        access_key_id=settings.aliyun_sms_access_key_id,
        access_key_secret=settings.aliyun_sms_access_key_secret,
        endpoint=settings.aliyun_sms_endpoint,
        region_id=settings.aliyun_sms_region_id,
        template_codes=settings.aliyun_sms_template_codes,
        callback_token=settings.aliyun_sms_callback_token,
        timeout_seconds=settings.aliyun_sms_timeout_seconds,
    )
