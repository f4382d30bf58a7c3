from typing import Literal

from pydantic import Field, SecretStr

from crm_libs.settings import BaseServiceSettings


class Settings(BaseServiceSettings):
    service_name: str = "engagement"
    port: int = 8002
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/crm_engagement"
    consumer_group: str = "engagement"
    # How far ahead of this server's clock a visit's time may be (a phone's clock runs fast).
    visit_clock_skew_seconds: int = 300
    # Special-day care (care/scheduled.py): how many days ahead of its day each kind of occasion
    # is put on the list, and how often the job looks for stores past their local midnight.
    special_day_lead_days_personal: int = Field(default=3, ge=0, le=60)  # birthdays, anniversary
    special_day_lead_days_festival: int = Field(default=7, ge=0, le=60)
    special_day_lead_days_season: int = Field(default=3, ge=0, le=60)  # 立春, 立夏, 立秋, 立冬
    special_day_check_seconds: float = 60.0
    # Routine care (care/routine.py): how many days of calls and visits exist as tasks ahead
    # (today included), and how often the job looks for stores past their local midnight.
    routine_horizon_days: int = Field(default=14, ge=1, le=60)
    routine_check_seconds: float = 60.0
    # The customer service (customer_api.py, through peer_client.py, whose every peer waits at
    # most this long): the work list answers without names rather than wait longer for them.
    customer_url: str = "http://127.0.0.1:8001"
    customer_timeout_seconds: float = Field(default=2.0, gt=0)
    # The gateway's audit intake (peer_audit.py): what the customer service disclosed to a
    # worker is recorded there before the worker uses it.
    gateway_url: str = "http://127.0.0.1:8000"
    # Staff statistics (stats/): how often the month-close job looks for stores past their
    # local month start.
    staff_month_check_seconds: float = 60.0
    # Member events (member_events/): scoring answers segments to invite (GET /scores, as
    # the caller), and the guest-file job looks this often for guests whose file could not
    # be opened at check-in (the customer service was down).
    scoring_url: str = "http://127.0.0.1:8003"
    guest_file_check_seconds: float = Field(default=5.0, gt=0)
    # Complaints (complaints/): the second follow-up after an unsatisfied feedback is due this
    # many store-local days after it (DOMAIN.md §7).
    complaint_follow_up_days: int = Field(default=2, ge=0, le=30)
    # Care messages (messages/): the SMS provider the worker sends through (CRM_SMS_PROVIDER);
    # console logs and reports delivered, the embedded default.
    sms_provider: Literal["console", "aliyun"] = "console"
    # The sender signature (【signature】) every message goes under; the store's name when unset.
    sms_signature: str | None = Field(default=None, min_length=2, max_length=20)
    # A brand's forbidden words per template category ({"season": [...]}), replacing that
    # category's defaults (messages/categories.py).
    sms_forbidden_words: dict[str, list[str]] = {}
    # Replies that opt a customer out of every message but transactional ones under the
    # signature, and those that opt back in (compared whole, ignoring case and spaces).
    sms_opt_out_keywords: list[str] = ["TD", "T", "N", "退订"]
    sms_resubscribe_keywords: list[str] = ["DY", "订阅"]
    # What every promotional message ends with.
    sms_unsubscribe_suffix: str = "回TD退订"
    # At most this many messages (transactional ones aside) per customer in this many days.
    sms_frequency_cap_messages: int = Field(default=3, ge=1)
    sms_frequency_cap_days: int = Field(default=7, ge=1)
    # The sending worker (messages/worker.py): messages per claim, how long a claim holds, how
    # often it looks without being woken, and the backoff of retries until it gives up.
    sms_send_batch: int = Field(default=50, ge=1, le=1000)
    sms_lease_seconds: float = Field(default=120.0, gt=0)
    sms_poll_seconds: float = Field(default=5.0, gt=0)
    sms_retry_base_seconds: float = Field(default=30.0, gt=0)
    sms_retry_max_seconds: float = Field(default=3600.0, gt=0)
    sms_max_attempts: int = Field(default=8, ge=1)
    # Alibaba Cloud SMS (messages/providers/aliyun.py, CRM_SMS_PROVIDER=aliyun): the RAM user's
    # AccessKey (from the secret store, never the repository), the endpoint (a test's local
    # server), the approved template code by our template id or category ({"birthday":
    # "SMS_123"}), and the token in the SmsReport / SmsUp push URLs (deploy/README.md).
    aliyun_sms_access_key_id: str | None = None
    aliyun_sms_access_key_secret: SecretStr | None = None
    aliyun_sms_endpoint: str = "https://dysmsapi.aliyuncs.com"
    aliyun_sms_region_id: str = "cn-hangzhou"
    aliyun_sms_timeout_seconds: float = Field(default=5.0, gt=0)
    aliyun_sms_template_codes: dict[str, str] = {}
    aliyun_sms_callback_token: SecretStr | None = Field(default=None, min_length=24)
