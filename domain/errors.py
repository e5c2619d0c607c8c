"""Domain errors. Each carries a stable ``code`` the entrypoints map to HTTP statuses or CLI exits."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "DOMAIN_ERROR"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ValidationError(DomainError):
    """Bad input. ``details`` is a list of ``{"field", "message"}`` entries, one per bad field."""

    code = "VALIDATION_ERROR"

    def __init__(self, errors: list[dict[str, str]]) -> None:
        fields = ", ".join(e["field"] for e in errors)
        super().__init__(f"invalid input: {fields}", errors)
        self.errors = errors

    @classmethod
    def single(cls, field: str, message: str) -> ValidationError:
        return cls([{"field": field, "message": message}])


class NotFound(DomainError):
    code = "NOT_FOUND"


class CodeExists(DomainError):
    code = "CODE_EXISTS"


class CampaignExists(DomainError):
    code = "CAMPAIGN_EXISTS"


class InvalidChange(DomainError):
    """A campaign change the rules refuse (a budget below ``used_total``, a ``valid_until`` in the past...)."""

    code = "INVALID_CHANGE"


class InvalidTransition(DomainError):
    code = "INVALID_TRANSITION"


class PurchaseNotRefunded(DomainError):
    code = "PURCHASE_NOT_REFUNDED"


class NoPromoRedemption(DomainError):
    code = "NO_PROMO_REDEMPTION"


class CheckoutError(DomainError):
    """A checkout request that cannot be honoured; ``code`` names why."""

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message, details)
        self.code = code


class PaymentRefundError(DomainError):
    code = "PAYMENT_REFUND_FAILED"


class InvalidPurchaseState(DomainError):
    code = "INVALID_PURCHASE_STATE"


class ConfigurationError(DomainError):
    """A bad configuration value; the message names the variable."""

    code = "CONFIGURATION_ERROR"


class StorageUnavailable(DomainError):
    """The database could not be reached or dropped the connection; nothing of the operation was kept."""

    code = "STORAGE_UNAVAILABLE"


# Raised by repositories when a database (or the in-memory equivalent) constraint refuses a write.
class ConstraintViolation(Exception):
    pass


class DuplicateIdempotencyKey(ConstraintViolation):
    pass


class LiveRedemptionExists(ConstraintViolation):
    pass


class DuplicateCodeHash(ConstraintViolation):
    pass


class OpenPurchaseExists(ConstraintViolation):
    pass


class DuplicateChargeId(ConstraintViolation):
    pass


class DuplicateCampaignName(ConstraintViolation):
    pass


class UserSlotTaken(ConstraintViolation):
    """The user holds a live redemption in this ``user_slot`` of the campaign already (a racing redeem won it)."""
