"""Care messages through Alibaba Cloud SMS: the engagement service's worker sends with the aliyun
provider to a local server that speaks SendSms and checks every signature; the platform's
delivery reports and replies come back through the gateway."""

import json
import random
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from pydantic import SecretStr

from crm_devstack.fixtures import eventually, throwaway_stack
from crm_devstack.stack import LocalStack
from engagement_service.messages.providers.aliyun import AliyunSmsProvider
from engagement_service.messages.providers.aliyun_signing import signature
from engagement_service.messages.providers.base import (
    OutgoingMessage,
    SendAccepted,
    SendRetryable,
)
from tests.aliyun_sms_server import FakeAliyunSms, RunningServer, expected_signature
from tests.builders import create_customer, create_store

KEY_ID = "LTAI-test-key-id"
KEY_SECRET = "test-access-key-secret-0123456789"
TOKEN = "callback-token-0123456789abcdef"
SIGN_NAME = "康乐健康"
CODES = {"care": "SMS_100001", "promotional": "SMS_100002"}
RETRY_BASE = 0.5


def _daytime_zone() -> str:
    """A store zone where it is between 09:00 and 20:00 now: quiet hours would hold messages."""
    for zone in (
        "Asia/Shanghai",
        "Europe/London",
        "America/New_York",
        "Pacific/Auckland",
        "Asia/Kolkata",
        "America/Los_Angeles",
        "Europe/Moscow",
        "Asia/Dubai",
    ):
        if 9 <= datetime.now(ZoneInfo(zone)).hour < 20:
            return zone
    raise AssertionError("no daytime zone in the list")


def _mobile() -> str:
    return "139" + "".join(random.choices("0123456789", k=8))


@pytest.fixture(scope="module")
def fake() -> FakeAliyunSms:
    return FakeAliyunSms(
        access_key_id=KEY_ID,
        access_key_secret=KEY_SECRET,
        sign_names={SIGN_NAME},
        templates={CODES["care"]: {"form_of_address"}, CODES["promotional"]: {"form_of_address"}},
    )


@pytest.fixture(scope="module")
def aliyun_stack(fake: FakeAliyunSms) -> Iterator[LocalStack]:
    with (
        RunningServer(fake) as server,
        throwaway_stack(
            {
                "CRM_RATE_LIMIT": "1000000/minute",
                "CRM_SIGN_IN_RATE_LIMIT": "100000/minute",
                "CRM_SMS_PROVIDER": "aliyun",
                "CRM_SMS_SIGNATURE": SIGN_NAME,
                "CRM_ALIYUN_SMS_ACCESS_KEY_ID": KEY_ID,
                "CRM_ALIYUN_SMS_ACCESS_KEY_SECRET": KEY_SECRET,
                "CRM_ALIYUN_SMS_ENDPOINT": server.url,
                "CRM_ALIYUN_SMS_TEMPLATE_CODES": json.dumps(CODES),
                "CRM_ALIYUN_SMS_CALLBACK_TOKEN": TOKEN,
                "CRM_ALIYUN_SMS_TIMEOUT_SECONDS": "1",
                "CRM_SMS_RETRY_BASE_SECONDS": str(RETRY_BASE),
                "CRM_SMS_RETRY_MAX_SECONDS": "4",
                "CRM_SMS_POLL_SECONDS": "0.2",
            }
        ) as local,
    ):
        yield local


@pytest.fixture
async def api(aliyun_stack: LocalStack) -> AsyncIterator[httpx.AsyncClient]:
    base = aliyun_stack.url("gateway") + "/api/v1"
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        token = await client.post(
            "/auth/token", json={"username": "admin", "password": aliyun_stack.admin_password}
        )
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        yield client


def _callback(stack: LocalStack, kind: str, token: str = TOKEN) -> str:
    return f"{stack.url('gateway')}/api/v1/sms/callbacks/aliyun/{token}/{kind}"


async def _template(api: httpx.AsyncClient, category: str, store_id: str) -> str:
    body = {
        "care": "{form_of_address}，天凉了，记得添衣。",
        "promotional": "{form_of_address}，会员日到店有礼。",
    }
    response = await api.post(
        "/templates",
        json={"category": category, "name": category, "body": body[category], "store_id": store_id},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _customer(api: httpx.AsyncClient, phone: str) -> tuple[str, dict[str, str]]:
    store = await create_store(api, timezone=_daytime_zone())
    customer = await create_customer(
        api,
        store_id=store["id"],
        gender="female",
        phone=phone,
        consents={"sms": {"granted": True, "channel": "in_store"}},
    )
    templates = {c: await _template(api, c, store["id"]) for c in CODES}
    return customer["id"], templates


async def _send(api: httpx.AsyncClient, customer_id: str, template_id: str) -> httpx.Response:
    """POST /messages once engagement's copy of the file has arrived (it comes by event)."""

    async def posted() -> httpx.Response | None:
        response = await api.post(
            "/messages", json={"customer_id": customer_id, "template_id": template_id}
        )
        return None if response.status_code == 404 else response

    return await eventually(posted)


async def _message(api: httpx.AsyncClient, customer_id: str, message_id: str) -> dict[str, Any]:
    page = (await api.get("/messages", params={"customer_id": customer_id})).json()
    return next(m for m in page["items"] if m["id"] == message_id)


async def _settled(
    api: httpx.AsyncClient, customer_id: str, message_id: str, status: str
) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        message = await _message(api, customer_id, message_id)
        return message if message["status"] == status else None

    return await eventually(probe, timeout=30)


def _requests_for(fake: FakeAliyunSms, message_id: str) -> list[Any]:
    return [r for r in fake.received if r.params.get("OutId") == message_id]


def test_the_signature_is_the_documented_one() -> None:
    params = {
        "AccessKeyId": "testId", "Action": "SendSms", "Format": "XML", "OutId": "123",
        "PhoneNumbers": "15300000001", "RegionId": "cn-hangzhou", "SignName": "阿里云短信测试专用",
        "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        "SignatureVersion": "1.0", "TemplateCode": "SMS_71390007",
        "TemplateParam": '{"customer":"test"}', "Timestamp": "2017-07-12T02:42:19Z",
        "Version": "2017-05-25",
    }  # fmt: skip
    assert signature("GET", params, secret="testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    assert expected_signature("GET", params, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


async def test_the_local_server_refuses_a_request_signed_with_another_secret(
    fake: FakeAliyunSms,
) -> None:
    with RunningServer(fake) as server:
        for secret, accepted in (("not-the-secret", False), (KEY_SECRET, True)):
            provider = AliyunSmsProvider(
                access_key_id=KEY_ID,
                access_key_secret=SecretStr(secret),
                endpoint=server.url,
                region_id="cn-hangzhou",
                template_codes=CODES,
                callback_token=None,
                timeout_seconds=2,
            )
            outcome = await provider.send(
                OutgoingMessage(
                    out_id=f"m-{secret}",
                    phone=_mobile(),
                    signature=SIGN_NAME,
                    text="王女士，天凉了，记得添衣。",
                    carrier_class="notification",
                    category="care",
                    parameters={"form_of_address": "王女士"},
                )
            )
            await provider.aclose()
            if accepted:
                assert isinstance(outcome, SendAccepted)
            else:
                assert isinstance(outcome, SendRetryable)
                assert outcome.code == "SignatureDoesNotMatch"
        assert [r.code for r in fake.received[-2:]] == ["SignatureDoesNotMatch", "OK"]


async def test_a_message_goes_signed_with_its_out_id_sign_name_and_template_param(
    api: httpx.AsyncClient, fake: FakeAliyunSms
) -> None:
    phone = _mobile()
    customer_id, templates = await _customer(api, phone)
    queued = await _send(api, customer_id, templates["care"])
    assert queued.status_code == 202, queued.text
    message_id = queued.json()["id"]

    sent = await _settled(api, customer_id, message_id, "sent")

    [request] = _requests_for(fake, message_id)
    assert request.code == "OK"
    assert sent["provider"] == "aliyun"
    assert sent["provider_message_id"] == request.biz_id
    assert request.params["PhoneNumbers"] == phone
    assert request.params["SignName"] == SIGN_NAME
    assert request.params["TemplateCode"] == CODES["care"]
    assert json.loads(request.params["TemplateParam"]) == {"form_of_address": "王女士"}
    assert request.params["Version"] == "2017-05-25"


async def test_throttle_server_error_and_timeout_are_retried_with_backoff(
    api: httpx.AsyncClient, fake: FakeAliyunSms
) -> None:
    customer_id, templates = await _customer(api, _mobile())
    fake.fail_next("throttle", "server_error", "timeout")
    queued = await _send(api, customer_id, templates["care"])
    message_id = queued.json()["id"]

    sent = await _settled(api, customer_id, message_id, "sent")

    async def answered() -> list[Any] | None:
        requests = _requests_for(fake, message_id)
        return requests if all(r.code != "pending" for r in requests) else None

    requests = await eventually(answered)
    assert [r.code for r in requests] == [
        "isv.BUSINESS_LIMIT_CONTROL",
        "InternalError",
        "ServiceUnavailable",  # answered after the provider had given up waiting
        "OK",
    ]
    assert sent["attempts"] == 4
    assert sent["provider_message_id"] == requests[-1].biz_id
    # Each wait at least the backoff's: base, twice the base, four times (plus the timeout).
    gaps = [later.at - earlier.at for earlier, later in zip(requests, requests[1:], strict=False)]
    assert gaps[0] >= RETRY_BASE
    assert gaps[1] >= 2 * RETRY_BASE
    assert gaps[2] >= 4 * RETRY_BASE


async def test_an_invalid_number_fails_for_good(
    api: httpx.AsyncClient, fake: FakeAliyunSms
) -> None:
    phone = _mobile()
    fake.illegal_numbers.add(phone)
    customer_id, templates = await _customer(api, phone)
    message_id = (await _send(api, customer_id, templates["care"])).json()["id"]

    failed = await _settled(api, customer_id, message_id, "failed")

    assert "isv.MOBILE_NUMBER_ILLEGAL" in failed["reason"]
    assert failed["attempts"] == 1
    assert len(_requests_for(fake, message_id)) == 1


async def test_a_delivery_report_through_the_gateway_marks_the_message_delivered(
    api: httpx.AsyncClient, fake: FakeAliyunSms, aliyun_stack: LocalStack
) -> None:
    customer_id, templates = await _customer(api, _mobile())
    message_id = (await _send(api, customer_id, templates["care"])).json()["id"]
    await _settled(api, customer_id, message_id, "sent")
    [request] = _requests_for(fake, message_id)

    # A report with a bad token, and one for a message nobody sent: answered so the platform
    # stops resending them, and nothing changes.
    ignored = await fake.push_report(
        _callback(aliyun_stack, "reports", "wrong-token"), received=request
    )
    assert ignored.status_code == 200 and ignored.json()["code"] == 0
    request_of_nobody = type(request)(
        params={**request.params, "OutId": "no-such-message"},
        code="OK",
        http_status=200,
        biz_id="999^0",
    )
    unknown = await fake.push_report(_callback(aliyun_stack, "reports"), received=request_of_nobody)
    assert unknown.status_code == 200 and unknown.json()["code"] == 0
    assert (await _message(api, customer_id, message_id))["status"] == "sent"

    answer = await fake.push_report(_callback(aliyun_stack, "reports"), received=request)

    assert answer.status_code == 200 and answer.json() == {"code": 0, "msg": "接收成功"}
    delivered = await _message(api, customer_id, message_id)
    assert delivered["status"] == "delivered"
    assert delivered["delivered_at"] is not None


async def test_only_the_callback_paths_pass_the_gateway_without_credentials(
    aliyun_stack: LocalStack,
) -> None:
    base = aliyun_stack.url("gateway") + "/api/v1"
    async with httpx.AsyncClient(base_url=base, timeout=10) as anonymous:
        assert (await anonymous.get("/messages")).status_code == 401
        assert (await anonymous.post("/messages", json={})).status_code == 401
        # Another method on a callback path, or a path beside them, is not forwarded.
        assert (await anonymous.get(f"/sms/callbacks/aliyun/{TOKEN}/reports")).status_code == 404
        assert (
            await anonymous.post(f"/sms/callbacks/aliyun/{TOKEN}/other", json=[])
        ).status_code == 404
        assert (await anonymous.post(f"/sms/callbacks/aliyun/{TOKEN}/reports", json=[])).json() == {
            "code": 0,
            "msg": "接收成功",
        }


async def test_a_reply_of_tuiding_opts_out_and_a_resubscribe_restores(
    api: httpx.AsyncClient, fake: FakeAliyunSms, aliyun_stack: LocalStack
) -> None:
    phone = _mobile()
    customer_id, templates = await _customer(api, phone)
    message_id = (await _send(api, customer_id, templates["care"])).json()["id"]
    await _settled(api, customer_id, message_id, "sent")

    replied = await fake.push_reply(
        _callback(aliyun_stack, "replies"), phone=phone, content="退订", sign_name=SIGN_NAME
    )
    assert replied.status_code == 200 and replied.json()["code"] == 0

    refused = await api.post(
        "/messages", json={"customer_id": customer_id, "template_id": templates["promotional"]}
    )
    assert refused.status_code == 409, refused.text
    assert "opted_out_by_reply" in refused.text

    # The same reply with a bad token changes nothing; the re-subscribe keyword restores.
    await fake.push_reply(
        _callback(aliyun_stack, "replies", "wrong-token"),
        phone=phone,
        content="DY",
        sign_name=SIGN_NAME,
    )
    still = await api.post(
        "/messages", json={"customer_id": customer_id, "template_id": templates["promotional"]}
    )
    assert still.status_code == 409
    await fake.push_reply(
        _callback(aliyun_stack, "replies"), phone=phone, content="DY", sign_name=SIGN_NAME
    )
    restored = await api.post(
        "/messages", json={"customer_id": customer_id, "template_id": templates["promotional"]}
    )
    assert restored.status_code == 202, restored.text
    sent = await _settled(api, customer_id, restored.json()["id"], "sent")
    assert sent["body"].endswith("回TD退订")
    assert _requests_for(fake, sent["id"])[-1].params["TemplateCode"] == CODES["promotional"]


def test_no_credentials_in_the_settings_by_default() -> None:
    from engagement_service.config import Settings

    settings = Settings()
    assert settings.aliyun_sms_access_key_secret is None
    assert settings.aliyun_sms_callback_token is None
    # A secret set is never printed with the settings.
    shown = Settings(aliyun_sms_access_key_secret=SecretStr(KEY_SECRET))
    assert KEY_SECRET not in repr(shown) and KEY_SECRET not in str(shown.model_dump())
