"""Request and response shapes of the internal API, and the one cattrs converter that reads and writes them.

Reading is strict: a JSON number is not a string, ``true`` is not ``1``, unknown fields are refused,
and every problem becomes one ``{"field", "message"}`` entry (``cattrs.transform_error``).
"""

from __future__ import annotations

import enum
import json
import re
from datetime import UTC, datetime
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

from domain.campaigns import CampaignSpec
from domain.model import Campaign, CampaignStatus, PromoType, Purchase, Redemption, TargetScope
from entrypoints.http.errors import ApiError, validation_error

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)

MAX_INT64 = 2**63 - 1
# Counters live in 32-bit columns on every database family.
MAX_INT32 = 2**31 - 1
MAX_REASON = 500
MAX_PRODUCTS = 100
MAX_PRODUCT_CODE = 64


# --- request bodies -------------------------------------------------------------------------------


@attrs.frozen
class RedeemRequest:
    user_id: int
    code: str
    idempotency_key: str


@attrs.frozen
class CampaignCreateRequest:
    code: str
    campaign_name: str
    promo_type: PromoType
    grant_plan_code: str | None = None
    grant_days: int | None = None
    discount_percent: int | None = None
    applicable_products: list[str] = attrs.field(factory=list)
    target_scope: TargetScope = TargetScope.ALL
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    max_total_uses: int | None = None

    def spec(self) -> CampaignSpec:
        return CampaignSpec(
            campaign_name=self.campaign_name,
            promo_type=self.promo_type,
            grant_plan_code=self.grant_plan_code,
            grant_days=self.grant_days,
            discount_percent=self.discount_percent,
            applicable_products=tuple(self.applicable_products),
            target_scope=self.target_scope,
            valid_from=self.valid_from,
            valid_until=self.valid_until,
            max_total_uses=self.max_total_uses,
        )

    def problems(self) -> list[dict[str, str]]:
        """Limits of the HTTP layer the domain does not know (column sizes)."""
        errors: list[dict[str, str]] = []
        for name in ("grant_days", "discount_percent", "max_total_uses"):
            value = getattr(self, name)
            if value is not None and not -MAX_INT32 <= value <= MAX_INT32:
                errors.append({"field": name, "message": f"must be at most {MAX_INT32}"})
        if len(self.applicable_products) > MAX_PRODUCTS:
            errors.append({"field": "applicable_products", "message": f"at most {MAX_PRODUCTS} products"})
        elif any(not p or len(p) > MAX_PRODUCT_CODE for p in self.applicable_products):
            errors.append({"field": "applicable_products",
                           "message": f"every product code must be 1..{MAX_PRODUCT_CODE} characters"})
        return errors


@attrs.frozen
class StatusChangeRequest:
    status: CampaignStatus
    reason: str | None = None


@attrs.frozen
class RefundRollbackRequest:
    purchase_id: int


@attrs.frozen
class EmptyRequest:
    """``POST /internal/payments/{id}/refund`` takes ``{}`` (or no body at all)."""


def positive_id(value: int, field: str) -> int:
    if not 1 <= value <= MAX_INT64:
        raise validation_error([{"field": field, "message": "must be a positive integer"}])
    return value


# --- responses ------------------------------------------------------------------------------------


@attrs.frozen
class RedemptionView:
    id: int
    promo_code_id: int
    user_id: int
    promo_type: PromoType
    status: str
    discount_percent: int | None
    reserved_until: datetime | None
    grant_plan_code: str | None
    grant_days: int | None
    created_at: datetime

    @classmethod
    def of(cls, redemption: Redemption, campaign: Campaign) -> RedemptionView:
        assert redemption.id is not None
        return cls(
            id=redemption.id,
            promo_code_id=redemption.promo_code_id,
            user_id=redemption.user_id,
            promo_type=campaign.promo_type,
            status=redemption.status.value,
            discount_percent=redemption.discount_percent,
            reserved_until=redemption.reserved_until,
            grant_plan_code=campaign.grant_plan_code,
            grant_days=campaign.grant_days,
            created_at=redemption.created_at,
        )


# --- the converter --------------------------------------------------------------------------------


def _strict_int(value: Any, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be an integer")
    if not -MAX_INT64 - 1 <= value <= MAX_INT64:
        raise ValueError("must fit in 64 bits")
    return value


def _strict_str(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid UTF-8 (no lone surrogates)") from None
    return value


def _strict_str_list(value: Any, _: Any) -> list[str]:
    if not isinstance(value, list):
        raise ValueError("must be a list of strings")
    out: list[str] = []
    for i, item in enumerate(value):
        try:
            out.append(_strict_str(item, str))
        except ValueError as exc:
            raise ValueError(f"item {i}: {exc}") from None
    return out


def _strict_enum(value: Any, cls: type[E]) -> E:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    try:
        return cls(value)
    except ValueError:
        raise ValueError("must be one of " + ", ".join(m.value for m in cls)) from None


def parse_datetime(value: Any) -> datetime:
    if not isinstance(value, str) or len(value) > 64:
        raise ValueError("must be an ISO 8601 date-time string with a timezone")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO 8601 date-time string with a timezone") from None
    if parsed.utcoffset() is None:
        raise ValueError("must carry a timezone (e.g. 2026-01-31T00:00:00Z)")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None


def _format_datetime(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_structure_hook(int, _strict_int)
    conv.register_structure_hook(str, _strict_str)
    # The str hook would also catch these StrEnums (subclasses); the more specific hook wins.
    for enum_cls in (PromoType, TargetScope, CampaignStatus):
        conv.register_structure_hook(enum_cls, _strict_enum)
    conv.register_structure_hook_func(lambda t: t == list[str], _strict_str_list)
    conv.register_structure_hook(datetime, lambda v, _: parse_datetime(v))
    conv.register_unstructure_hook(datetime, _format_datetime)
    return conv


converter = _make_converter()


def _field_path(path: str) -> str:
    """``$.applicable_products[2]`` -> ``applicable_products[2]``; ``$`` -> ``body``."""
    return path.removeprefix("$.").removeprefix("$") or "body"


def _messages(exc: BaseException, path: str = "$") -> list[dict[str, str]]:
    """One entry per bad field of a cattrs structure error."""
    out: list[dict[str, str]] = []
    if isinstance(exc, ForbiddenExtraKeysError):
        return [{"field": _field_path(f"{path}.{k}"), "message": "unknown field"} for k in sorted(exc.extra_fields)]
    if isinstance(exc, ClassValidationError | IterableValidationError):
        for strings in cattrs.transform_error(exc, path=path, format_exception=_format_exception):
            message, _, where = strings.rpartition(" @ ")
            out.append({"field": _field_path(where), "message": message})
        return out
    return [{"field": _field_path(path), "message": _format_exception(exc, None)}]


def _format_exception(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, ForbiddenExtraKeysError):
        return "extra fields found (" + ", ".join(sorted(exc.extra_fields)) + ")"
    if isinstance(exc, ValueError | TypeError) and str(exc):
        return str(exc)[:200]
    return "invalid value"


_SPLIT_EXTRA = re.compile(r"^extra fields found \((.*)\)$")


def read_json(raw: bytes) -> Any:
    """Parse a request body; an empty body is ``{}``. Malformed JSON -> 400 naming ``body``."""
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise validation_error([{"field": "body", "message": f"malformed JSON: {exc}"[:200]}]) from None


def structure(data: Any, cls: type[T]) -> T:
    """``data`` (parsed JSON) as ``cls`` or a 400 VALIDATION_ERROR with one entry per field."""
    if not isinstance(data, dict):
        raise validation_error([{"field": "body", "message": "must be a JSON object"}])
    try:
        return converter.structure(data, cls)
    except (ClassValidationError, IterableValidationError, ForbiddenExtraKeysError) as exc:
        errors = _expand_extra(_messages(exc))
        raise validation_error(errors) from None
    except (ValueError, TypeError) as exc:
        raise validation_error([{"field": "body", "message": str(exc)[:200]}]) from None


def _expand_extra(errors: list[dict[str, str]]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for e in errors:
        m = _SPLIT_EXTRA.match(e["message"])
        if m:
            prefix = "" if e["field"] == "body" else e["field"] + "."
            out += [{"field": prefix + k.strip(), "message": "unknown field"} for k in m.group(1).split(",")]
        else:
            out.append(e)
    return out


def unstructure(value: Any) -> Any:
    return converter.unstructure(value)


def campaign_json(campaign: Campaign) -> dict[str, Any]:
    """The SPEC 3 columns, ``code_hash`` included (the plaintext is never stored)."""
    data: dict[str, Any] = converter.unstructure(campaign)
    return data


def purchase_json(purchase: Purchase) -> dict[str, Any]:
    """The ``purchases`` columns of SPEC 5 (and ``review_reason`` set by payment recovery)."""
    data: dict[str, Any] = converter.unstructure(purchase)
    return data


def not_found(what: str) -> ApiError:
    return ApiError(404, "NOT_FOUND", f"{what} not found")
