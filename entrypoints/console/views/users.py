"""User (SPEC 14): one Telegram user by id — redemptions, purchases, entitlement, recent attempts, whether and until
when throttled (``ReportService.user``, as ``GET /internal/users/{user_id}``) — and the admin actions on a purchase:
refund a PAID one through Telegram (``refundStarPayment``), roll back a REFUNDED one's promo redemption now.

Users are not stored as such: any valid id shows a page, empty for a user the system never saw.
"""

from __future__ import annotations

import logging

import attrs
from flask import abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response
from wtforms import StringField
from wtforms.validators import InputRequired

from domain.errors import DomainError, NotFound, PaymentRefundError, ValidationError
from domain.model import Purchase, PurchaseStatus, RedemptionStatus
from domain.redemption import MAX_USER_ID
from entrypoints.console import security
from entrypoints.console.blueprint import bp
from entrypoints.console.forms import ConsoleForm
from entrypoints.http.convert import MAX_INT64

log = logging.getLogger("starpromo.console")

CONFIRMED = "yes"
USER_ID_RULE = f"must be a whole number from 1 to {MAX_USER_ID}"
NO_GATEWAY = "refunds need TELEGRAM_BOT_TOKEN"
REFUND, ROLLBACK = "refund", "rollback"


class UserSearchForm(ConsoleForm):
    user_id = StringField("Telegram user id", validators=[InputRequired(message="type a Telegram user id")])

    def parsed_user_id(self) -> int | None:
        """The id, or None with the error next to the field."""
        text = (self.user_id.data or "").strip()
        if not (text.isascii() and text.isdecimal()) or len(text) > len(str(MAX_USER_ID)) \
                or not 1 <= int(text) <= MAX_USER_ID:
            errors = list(self.user_id.errors or [])
            errors.append(USER_ID_RULE)
            self.user_id.errors = errors
            return None
        return int(text)


@attrs.frozen
class ActionError:
    """A refused refund or rollback, shown next to the purchase's button."""

    purchase_id: int
    action: str
    message: str


def operator_name() -> str:
    return security.current_operator().name


@bp.route("/users")
def user_search() -> Response | tuple[str, int]:
    form = UserSearchForm(request.args)
    if "user_id" not in request.args:
        form = UserSearchForm(formdata=None)
        return render_template("console/user_search.html", form=form), 200
    user_id = form.parsed_user_id() if form.validate() else None
    if user_id is None:
        return render_template("console/user_search.html", form=form), 400
    return redirect(url_for("ops.user", user_id=user_id))


def _bad_user_id(text: str) -> tuple[str, int]:
    form = UserSearchForm(formdata=None, user_id=text)
    form.user_id.errors = [USER_ID_RULE]
    return render_template("console/user_search.html", form=form), 400


def render_user_page(user_id: int, status: int = 200, action_error: ActionError | None = None) -> tuple[str, int]:
    if not 1 <= user_id <= MAX_USER_ID:
        return _bad_user_id(str(user_id))
    container = security.container()
    try:
        view = container.report_service().user(user_id)
    except ValidationError:
        return _bad_user_id(str(user_id))
    now = container.clock().now()
    policy = container.policy()
    redemption_status = {r.redemption.id: r.redemption.status for r in view.redemptions}
    rollback_ids = {p.id for p in view.purchases
                    if p.status is PurchaseStatus.REFUNDED and p.promo_redemption_id is not None
                    and redemption_status.get(p.promo_redemption_id) is not RedemptionStatus.REVOKED}
    blocked = view.blocked_until if view.blocked_until is not None and view.blocked_until > now else None
    return render_template(
        "console/user.html", view=view, now=now, blocked_until=blocked, fail_limit=policy.fail_limit,
        fail_window_hours=policy.fail_window_hours, rollback_ids=rollback_ids, action_error=action_error,
        gateway=container.payment_gateway.is_defined, no_gateway=NO_GATEWAY,
    ), status


@bp.route("/users/<int:user_id>")
def user(user_id: int) -> tuple[str, int]:
    return render_user_page(user_id)


def _purchase_of(user_id: int, purchase_id: int) -> Purchase:
    """The user's purchase, or the 404 page (also for another user's purchase)."""
    if not 1 <= user_id <= MAX_USER_ID or purchase_id > MAX_INT64:
        abort(404, f"There is no purchase {purchase_id} of user {user_id}.")
    try:
        purchase = security.container().checkout_service().get(purchase_id)
    except (NotFound, ValidationError):
        abort(404, f"There is no purchase {purchase_id} of user {user_id}.")
    if purchase.user_id != user_id:
        abort(404, f"There is no purchase {purchase_id} of user {user_id}.")
    return purchase


def _error_status(exc: DomainError) -> int:
    """The page's status for a refused action: Telegram refusing is a bad gateway (as in the API), anything the
    rules refuse a conflict."""
    if isinstance(exc, PaymentRefundError):
        return 502
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, ValidationError):
        return 400
    return 409


def _confirmed() -> bool:
    return request.form.get("confirm") == CONFIRMED


@bp.post("/users/<int:user_id>/purchases/<int:purchase_id>/refund")
def user_refund(user_id: int, purchase_id: int) -> Response | tuple[str, int]:
    _purchase_of(user_id, purchase_id)
    if not _confirmed():
        return render_user_page(user_id, 400, ActionError(purchase_id, REFUND,
                                                          "tick the box to confirm: a refund cannot be undone"))
    container = security.container()
    if not container.payment_gateway.is_defined:
        return render_user_page(user_id, 409, ActionError(purchase_id, REFUND, NO_GATEWAY))
    try:
        done = container.checkout_service().refund(purchase_id, container.payment_gateway(), actor=operator_name())
    except DomainError as exc:
        prefix = "Telegram refused the refund: " if isinstance(exc, PaymentRefundError) else ""
        return render_user_page(user_id, _error_status(exc), ActionError(purchase_id, REFUND, prefix + exc.message))
    log.info("purchase refunded", extra={"event": "payment_refunded", "purchase_id": purchase_id,
                                         "status": done.status.value, "actor": operator_name()})
    more = (" Its promo redemption is revoked by the refund rollback job within minutes, or now with "
            "“Roll back redemption”." if done.promo_redemption_id is not None else "")
    flash(f"Purchase {purchase_id} is refunded: {done.final_stars_amount:,} Stars back to user {user_id}.{more}", "ok")
    return redirect(url_for("ops.user", user_id=user_id, _anchor="purchases"), 303)


@bp.post("/users/<int:user_id>/purchases/<int:purchase_id>/rollback")
def user_rollback(user_id: int, purchase_id: int) -> Response | tuple[str, int]:
    _purchase_of(user_id, purchase_id)
    if not _confirmed():
        return render_user_page(user_id, 400, ActionError(
            purchase_id, ROLLBACK, "tick the box to confirm: the promo redemption is revoked for good"))
    try:
        result = security.container().maintenance_service().rollback_refund(purchase_id, actor=operator_name())
    except DomainError as exc:
        return render_user_page(user_id, _error_status(exc), ActionError(purchase_id, ROLLBACK, exc.message))
    log.info("refund rolled back", extra={"event": "refund_rolled_back", "purchase_id": purchase_id,
                                          "redemption_id": result.redemption_id, "replayed": result.replayed,
                                          "actor": operator_name()})
    again = " (it already was)" if result.replayed else ""
    flash(f"Purchase {purchase_id}: promo redemption {result.redemption_id} is {result.status.value}{again}.", "ok")
    return redirect(url_for("ops.user", user_id=user_id, _anchor="purchases"), 303)
