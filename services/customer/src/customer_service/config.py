from pydantic import Field, model_validator

from crm_libs.settings import BaseServiceSettings

# Development only: outside development the service refuses to start with it.
DEV_FIELD_KEY = "ZGV2LW9ubHktZmllbGQta2V5LWNoYW5nZS1tZS0wMDA="  # noqa: S105
DEV_PHONE_HASH_KEY = "dev-only-phone-hash-key-change-me-0123456789"  # noqa: S105


class Settings(BaseServiceSettings):
    service_name: str = "customer"
    port: int = 8001
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/crm_customer"
    # The group that keeps the scores' read copy (customer_service.handlers).
    consumer_group: str = "customer"
    # A purchase dated further ahead than this is a typing error, not a sale.
    purchase_clock_skew_seconds: int = 300
    # Keys (Fernet's format) sealing phones, ID numbers and health data (crm_libs.field_crypto);
    # the first encrypts, all decrypt (rotation).
    field_encryption_keys: list[str] = [DEV_FIELD_KEY]
    # HMAC key of the phones' lookup hashes (customers/phones.py). Changing it needs every
    # file's hashes recomputed from the encrypted numbers: unlike the field keys, it has no list.
    phone_hash_key: str = DEV_PHONE_HASH_KEY
    # Processes checking a spreadsheet import's rows (imports/row_checks.py), started for a
    # sheet longer than a chunk and stopped when no import is left; 0: one per core.
    import_processes: int = Field(default=0, ge=0)
    # How often a replica looks for stores past their local midnight, whose points expire
    # (membership/expiry.py).
    points_expiry_check_seconds: float = Field(default=60, gt=0)

    # How often a replica looks for stores past their local midnight, whose staff quiet for six
    # months are departed (ownership/inactivity.py).
    staff_inactivity_check_seconds: float = Field(default=60, gt=0)

    @model_validator(mode="after")
    def _refuse_default_field_key(self) -> "Settings":
        if self.environment == "production" and DEV_FIELD_KEY in self.field_encryption_keys:
            raise ValueError("CRM_FIELD_ENCRYPTION_KEYS must hold private keys outside development")
        if self.environment == "production" and self.phone_hash_key == DEV_PHONE_HASH_KEY:
            raise ValueError(
                "CRM_PHONE_HASH_KEY must be set to a private value outside development"
            )
        if len(self.phone_hash_key) < 32:
            raise ValueError("CRM_PHONE_HASH_KEY must be at least 32 characters long")
        return self
