"""Checkout for Telegram Stars with an optional discount reservation (SPEC 5).

The price is fixed when the purchase is created: a discount reservation is bound to the purchase
(``purchase_id``) in the same unit of work, and a bound reservation does not expire while its
purchase is open. Payment settles purchase, redemption and entitlement in one unit of work,
idempotently by ``telegram_payment_charge_id``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

import attrs

from domain import audit, entitlements
from domain.errors import (
    CheckoutError,
    DuplicateChargeId,
    InvalidPurchaseState,
    NotFound,
    OpenPurchaseExists,
    PaymentRefundError,
    ValidationError,
)
from domain.model import (
    OPEN_PURCHASE_STATUSES,
    LedgerSource,
    Product,
    Purchase,
    PurchaseStatus,
    Redemption,
    RedemptionStatus,
)
from domain.policy import PromoPolicy
from domain.products import ProductCatalog

if TYPE_CHECKING:
    from domain.outbox import OutcomeRecorder
    from ports.clock import Clock
    from ports.payments import PaymentGateway
    from ports.repositories import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger("starpromo.checkout")

MAX_USER_ID = 2**63 - 1
MAX_CHARGE_ID = 255
# Why a payment could not settle its promo reservation; the purchase is PAID and flagged for ops.
REVIEW_PROMO_NOT_RESERVED = "PROMO_REDEMPTION_NOT_RESERVED"
_OPEN = tuple(OPEN_PURCHASE_STATUSES)


def discounted_price(base_stars: int, percent: int | None = None, stars: int | None = None
                     ) -> tuple[int, int]:
    """``(discount, final)`` of a base price: ``floor(base * percent / 100)`` off for a percent discount,
    ``min(stars, base - 1)`` off for a Stars discount, nothing off without either; the final price is at least
    1 Star."""
    if percent is not None:
        discount = base_stars * percent // 100
    elif stars is not None:
        discount = stars
    else:
        discount = 0
    final = max(1, base_stars - discount)
    return base_stars - final, final


@attrs.frozen
class PrecheckoutAnswer:
    """The answer to Telegram's ``pre_checkout_query``: ok, or an error code saying why not."""

    ok: bool
    error_code: str | None = None

    @classmethod
    def refuse(cls, code: str) -> PrecheckoutAnswer:
        return cls(False, code)


@attrs.frozen
class Settlement:
    """A settled payment. ``replayed``: this charge id had already been settled; nothing changed."""

    purchase: Purchase
    replayed: bool


def _validate_user(user_id: object) -> None:
    if isinstance(user_id, bool) or not isinstance(user_id, int) or not 1 <= user_id <= MAX_USER_ID:
        raise ValidationError.single("user_id", "must be a positive 64-bit integer")


def _validate_id(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError.single(field, "must be a positive integer")
    return value


class CheckoutService:
    """init -> mark_invoice_sent -> precheckout -> successful_payment; refunds."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        catalog: ProductCatalog | None = None,
        policy: PromoPolicy | None = None,
    ) -> None:
        self._uow = uow_factory
        self._clock = clock
        self._catalog = catalog or ProductCatalog()
        self._policy = policy or PromoPolicy()

    @property
    def catalog(self) -> ProductCatalog:
        return self._catalog

    # --- init ----------------------------------------------------------------------------------------

    def init(self, user_id: int, product_code: str, redemption_id: int | None = None,
             invoice: OutcomeRecorder[Purchase] | None = None) -> Purchase:
        """The user's open purchase of ``product_code``, created when there is none.

        A repeat returns the open purchase. A request naming a different reservation than the open
        purchase carries supersedes it: the old one becomes FAILED (its reservation unbound) and a new
        one is priced with the new reservation. Likewise a reservation bound to the user's open purchase
        of another product moves to this one (the user changed their mind; the old invoice is FAILED).

        With ``invoice`` (the bot's outbox), a purchase still without its invoice gets it written in the
        transaction that creates it, and is INVOICE_SENT when that commits: the invoice is on its way.
        """
        _validate_user(user_id)
        product = self._catalog.require(product_code)
        if redemption_id is not None:
            _validate_id(redemption_id, "redemption_id")
        for _ in range(3):
            now = self._clock.now()
            with self._uow() as uow:
                if invoice is not None:
                    invoice.begin(uow)
                current = uow.purchases.get_open(user_id, product.code)
                if current is not None and (redemption_id is None or current.promo_redemption_id == redemption_id):
                    if invoice is None or current.status is not PurchaseStatus.CREATED:
                        return current
                    assert current.id is not None
                    sent = self._invoice(uow, current.id, invoice, now)
                    if sent is None:
                        continue  # it changed meanwhile: decide again
                    return sent
                reservation: Redemption | None = None
                superseded = [current] if current is not None else []
                if redemption_id is not None:
                    reservation = self._usable_reservation(uow, user_id, product, redemption_id, now)
                    if reservation.purchase_id is not None and (current is None
                                                                or reservation.purchase_id != current.id):
                        # Bound to the user's open purchase of another product: the newest choice wins.
                        other = uow.purchases.get(reservation.purchase_id)
                        if other is not None and other.is_open and other.user_id == user_id:
                            if other.product_code == product.code:
                                continue  # a racing init of this very purchase committed: return it next round
                            superseded.append(other)
                if not self._supersede(uow, superseded, now):
                    uow.rollback()
                    continue  # paid or failed meanwhile: decide again
                discount, final = (0, product.stars) if reservation is None else discounted_price(
                    product.stars, reservation.discount_percent, reservation.discount_stars)
                try:
                    purchase = uow.purchases.add(Purchase(
                        id=None, user_id=user_id, product_code=product.code, base_stars_amount=product.stars,
                        discount_stars_amount=discount, final_stars_amount=final,
                        promo_redemption_id=redemption_id, status=PurchaseStatus.CREATED,
                        telegram_payment_charge_id=None, created_at=now, updated_at=now,
                    ))
                except OpenPurchaseExists:
                    uow.rollback()
                    continue  # a racing init won: return its purchase on the next round
                assert purchase.id is not None
                if redemption_id is not None and uow.redemptions.bind_purchase(redemption_id, purchase.id,
                                                                               now) is None:
                    uow.rollback()
                    latest = uow.redemptions.get(redemption_id)
                    if latest is not None and latest.status is RedemptionStatus.RESERVED and latest.purchase_id:
                        raise CheckoutError("PROMO_IN_USE", "the promo reservation is already used by another "
                                            "purchase", {"redemption_id": redemption_id})
                    continue  # expired or applied meanwhile: the next round says exactly which
                if invoice is not None:
                    sent = self._invoice(uow, purchase.id, invoice, now)
                    assert sent is not None  # created in this very transaction
                    return sent
                uow.commit()
                return purchase
        raise CheckoutError("CHECKOUT_CONFLICT", "the purchase kept changing; try again")

    @staticmethod
    def _invoice(uow: UnitOfWork, purchase_id: int, invoice: OutcomeRecorder[Purchase], now: datetime
                 ) -> Purchase | None:
        """CREATED -> INVOICE_SENT with the invoice written by ``invoice``, committed; None when not CREATED."""
        sent = uow.purchases.set_status(purchase_id, [PurchaseStatus.CREATED], PurchaseStatus.INVOICE_SENT, now)
        if sent is None:
            uow.rollback()
            return None
        invoice.record(uow, sent)
        uow.commit()
        return sent

    @staticmethod
    def _supersede(uow: UnitOfWork, purchases: list[Purchase], now: datetime) -> bool:
        """Open purchases -> FAILED with their reservations unbound; False when one is no longer open."""
        for p in purchases:
            assert p.id is not None
            if uow.purchases.set_status(p.id, _OPEN, PurchaseStatus.FAILED, now) is None:
                return False
            if p.promo_redemption_id is not None:
                uow.redemptions.unbind_purchase(p.promo_redemption_id, p.id, now)
        return True

    @staticmethod
    def _usable_reservation(uow: UnitOfWork, user_id: int, product: Product, redemption_id: int,
                            now: datetime) -> Redemption:
        """The reservation, or the CheckoutError saying why it cannot be used."""
        r = uow.redemptions.get(redemption_id)
        details = {"redemption_id": redemption_id}
        # Someone else's reservation is reported exactly like a missing one.
        if r is None or r.user_id != user_id:
            raise CheckoutError("PROMO_NOT_FOUND", "no such promo reservation for this user", details)
        if r.status is not RedemptionStatus.RESERVED or not r.is_reservation:
            raise CheckoutError("PROMO_NOT_RESERVED", f"the promo redemption is {r.status.value}", details)
        if r.reserved_until is None or now >= r.reserved_until:
            raise CheckoutError("PROMO_RESERVATION_EXPIRED", "the promo reservation has expired", details)
        campaign = uow.campaigns.get(r.campaign_id)
        if campaign is None or not campaign.applies_to(product.code):
            raise CheckoutError("PROMO_NOT_APPLICABLE", f"the promo code does not apply to {product.code}",
                                {**details, "product_code": product.code})
        return r

    # --- invoice and pre-checkout --------------------------------------------------------------------

    def get(self, purchase_id: int) -> Purchase:
        with self._uow() as uow:
            purchase = uow.purchases.get(purchase_id)
        if purchase is None:
            raise NotFound(f"purchase {purchase_id} not found")
        return purchase

    def mark_invoice_sent(self, purchase_id: int) -> Purchase:
        """CREATED -> INVOICE_SENT; already INVOICE_SENT is a no-op."""
        now = self._clock.now()
        with self._uow() as uow:
            current = uow.purchases.get(purchase_id)
            if current is None:
                raise NotFound(f"purchase {purchase_id} not found")
            if current.status is PurchaseStatus.INVOICE_SENT:
                return current
            updated = uow.purchases.set_status(purchase_id, [PurchaseStatus.CREATED], PurchaseStatus.INVOICE_SENT,
                                               now)
            if updated is None:
                raise InvalidPurchaseState(f"purchase is {current.status.value}; no invoice can be sent",
                                           {"status": current.status.value})
            uow.commit()
            return updated

    def precheckout(self, purchase_id: int, amount: int) -> PrecheckoutAnswer:
        """Ok only for an INVOICE_SENT purchase at its final price whose bound reservation is RESERVED."""
        with self._uow() as uow:
            p = uow.purchases.get(purchase_id)
            if p is None:
                return PrecheckoutAnswer.refuse("PURCHASE_NOT_FOUND")
            if p.status is not PurchaseStatus.INVOICE_SENT:
                return PrecheckoutAnswer.refuse("PURCHASE_NOT_PAYABLE")
            if amount != p.final_stars_amount:
                return PrecheckoutAnswer.refuse("AMOUNT_MISMATCH")
            if p.promo_redemption_id is not None:
                r = uow.redemptions.get(p.promo_redemption_id)
                if r is None or r.status is not RedemptionStatus.RESERVED or r.purchase_id != p.id:
                    return PrecheckoutAnswer.refuse("PROMO_NO_LONGER_RESERVED")
        return PrecheckoutAnswer(True)

    # --- payment -------------------------------------------------------------------------------------

    def successful_payment(self, purchase_id: int, charge_id: str, amount: int,
                           recorder: OutcomeRecorder[Settlement] | None = None) -> Settlement:
        """Settle a payment: PAID, reservation APPLIED, entitlement granted — once per charge id.

        Telegram has taken the money when this arrives, so a purchase that went FAILED meanwhile (its
        invoice expired while the user paid) is still settled. If its reservation can no longer be
        applied, the purchase is settled at the price paid and flagged for review. ``recorder`` (the
        bot's confirmation) joins the settling transaction; a replay records nothing.
        """
        if not isinstance(charge_id, str) or not charge_id.strip() or len(charge_id) > MAX_CHARGE_ID:
            raise ValidationError.single("telegram_payment_charge_id", f"must be 1..{MAX_CHARGE_ID} characters")
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise ValidationError.single("amount", "must be an integer")
        for _ in range(3):
            now = self._clock.now()
            with self._uow() as uow:
                if recorder is not None:
                    recorder.begin(uow)
                settled = uow.purchases.get_by_charge_id(charge_id)
                if settled is not None:
                    if settled.id != purchase_id:
                        raise CheckoutError("CHARGE_ID_REUSED", "this charge id settled another purchase",
                                            {"purchase_id": settled.id})
                    return Settlement(settled, replayed=True)
                p = uow.purchases.get(purchase_id)
                if p is None:
                    raise NotFound(f"purchase {purchase_id} not found")
                if amount != p.final_stars_amount:
                    raise CheckoutError("AMOUNT_MISMATCH",
                                        f"paid {amount} Stars, the purchase costs {p.final_stars_amount}",
                                        {"expected": p.final_stars_amount, "got": amount})
                if p.status in (PurchaseStatus.PAID, PurchaseStatus.REFUNDED):
                    if p.telegram_payment_charge_id == charge_id:
                        # The same charge settled it between the two reads above (a racing delivery).
                        return Settlement(p, replayed=True)
                    raise CheckoutError("ALREADY_PAID", f"purchase is already {p.status.value} with another charge",
                                        {"status": p.status.value})
                product = self._catalog.get(p.product_code)
                if product is None:
                    raise CheckoutError("UNKNOWN_PRODUCT", f"product {p.product_code} is no longer in the catalog")
                try:
                    paid = uow.purchases.set_status(
                        purchase_id, [*_OPEN, PurchaseStatus.FAILED], PurchaseStatus.PAID, now, charge_id)
                except DuplicateChargeId:
                    uow.rollback()
                    continue  # the same charge raced itself: the next round replays the winner
                if paid is None:
                    continue
                if p.promo_redemption_id is not None and uow.redemptions.apply(
                        p.promo_redemption_id, purchase_id, now) is None:
                    flagged = uow.purchases.mark_review(purchase_id, REVIEW_PROMO_NOT_RESERVED, now)
                    paid = flagged or paid
                    log.warning("payment settled without its promo reservation", extra={
                        "event": "purchase_review_required", "purchase_id": purchase_id,
                        "promo_redemption_id": p.promo_redemption_id, "reason": REVIEW_PROMO_NOT_RESERVED})
                entitlements.grant(uow, p.user_id, product.plan_code, product.days, now, LedgerSource.PURCHASE,
                                   promo_redemption_id=p.promo_redemption_id, purchase_id=purchase_id)
                settlement = Settlement(paid, replayed=False)
                if recorder is not None:
                    recorder.record(uow, settlement)
                uow.commit()
                return settlement
        raise CheckoutError("CHECKOUT_CONFLICT", "the purchase kept changing; try again")

    # --- refunds -------------------------------------------------------------------------------------

    def mark_refunded(self, purchase_id: int, *, actor: str | None = None,
                      recorder: OutcomeRecorder[Purchase] | None = None) -> Purchase:
        """PAID -> REFUNDED (a refund made elsewhere, e.g. Telegram's ``refunded_payment``); idempotent.

        The entitlement the purchase granted is taken back in the same unit of work; the promo
        redemption is revoked by the refund rollback job. With ``actor`` (a person's refund through the API,
        the console or the CLI) the change is an audit entry. ``recorder`` (the bot's notice) joins the
        refund's transaction; an already REFUNDED purchase records nothing.
        """
        now = self._clock.now()
        with self._uow() as uow:
            if recorder is not None:
                recorder.begin(uow)
            current = uow.purchases.get(purchase_id)
            if current is None:
                raise NotFound(f"purchase {purchase_id} not found")
            if current.status is PurchaseStatus.REFUNDED:
                return current
            updated = uow.purchases.set_status(purchase_id, [PurchaseStatus.PAID], PurchaseStatus.REFUNDED, now)
            if updated is None:
                raise InvalidPurchaseState(f"purchase is {current.status.value}; only PAID can be refunded",
                                           {"status": current.status.value})
            take_back_entitlement(uow, updated, now)
            if actor is not None:
                audit.record(uow, now, actor, audit.PURCHASE_REFUNDED, audit.PURCHASE, purchase_id,
                             {"final_stars_amount": updated.final_stars_amount,
                              "promo_redemption_id": updated.promo_redemption_id})
            if recorder is not None:
                recorder.record(uow, updated)
            uow.commit()
            return updated

    def refund(self, purchase_id: int, gateway: PaymentGateway, *, actor: str) -> Purchase:
        """Refund through Telegram (``refundStarPayment``), then mark REFUNDED. Idempotent.

        Refused (InvalidPurchaseState) unless the purchase is PAID or REFUNDED. When Telegram says the
        charge was already refunded (an earlier call refunded it but could not mark it), it is marked now.
        """
        current = self.get(purchase_id)
        if current.status is PurchaseStatus.REFUNDED:
            return current
        if current.status is not PurchaseStatus.PAID or current.telegram_payment_charge_id is None:
            raise InvalidPurchaseState(f"purchase is {current.status.value}; only PAID can be refunded",
                                       {"status": current.status.value})
        try:
            gateway.refund_star_payment(current.user_id, current.telegram_payment_charge_id)
        except PaymentRefundError as exc:
            if "CHARGE_ALREADY_REFUNDED" not in exc.message:
                raise
        return self.mark_refunded(purchase_id, actor=actor)


def take_back_entitlement(uow: UnitOfWork, purchase: Purchase, now: datetime,
                          redemption: Redemption | None = None) -> bool:
    """Take back the days a refunded purchase granted, once (a REFUND_REVOKE ledger entry marks it done).

    The days and plan come from the purchase's own ledger entry, so a changed catalog cannot skew them.
    Returns whether days were taken back now.
    """
    assert purchase.id is not None
    granted = None
    for entry in uow.ledger.for_user(purchase.user_id):
        if entry.purchase_id != purchase.id:
            continue
        if entry.source is LedgerSource.REFUND_REVOKE:
            return False
        if entry.source is LedgerSource.PURCHASE:
            granted = entry
    if granted is None:
        return False
    redemption_id = redemption.id if redemption is not None else purchase.promo_redemption_id
    entitlements.revoke(uow, purchase.user_id, granted.plan_code, granted.days, now,
                        promo_redemption_id=redemption_id, purchase_id=purchase.id)
    return True
