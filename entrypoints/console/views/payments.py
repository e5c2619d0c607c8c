"""Payment reviews (SPEC 14): what reconciliation and payments recovery left for a human, oldest first, open ones
by default; an admin resolves one with a note of what was done (``PaymentReviewService.resolve``, audited under the
operator's name). The console asks for the note (the CLI leaves it optional): the next person should read what
was done."""

from __future__ import annotations

import logging
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response
from wtforms import BooleanField, IntegerField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from domain.errors import DomainError, NotFound, ValidationError
from domain.model import PaymentReview
from domain.payment_reviews import MAX_RESOLUTION_NOTE
from entrypoints.console import security
from entrypoints.console.blueprint import bp
from entrypoints.console.forms import ConsoleForm
from entrypoints.http.convert import MAX_INT64

log = logging.getLogger("starpromo.console")

PAGE_SIZE = 50
# The figures of a review's details worth a column of their own (as ``starpromo payments reviews`` shows them).
FIGURES = ("telegram_stars", "local_stars", "expected_stars", "drift", "product_code", "user_id")


class ReviewListForm(ConsoleForm):
    all = BooleanField("Show resolved reviews too")
    cursor = IntegerField("Cursor", validators=[Optional(), NumberRange(min=0, max=MAX_INT64)])


class ResolveForm(ConsoleForm):
    note = TextAreaField("Note", validators=[
        DataRequired(message="say what was done (1 to 500 characters)"),
        Length(min=1, max=MAX_RESOLUTION_NOTE, message=f"1 to {MAX_RESOLUTION_NOTE} characters")],
        filters=[lambda v: v.strip() if isinstance(v, str) else v])


def figures(review: PaymentReview) -> list[tuple[str, Any]]:
    return [(k, review.details[k]) for k in FIGURES if review.details.get(k) is not None]


def review_user(review: PaymentReview) -> int | None:
    """The Telegram user the review is about, when its details name one."""
    user = review.details.get("user_id")
    return user if isinstance(user, int) and not isinstance(user, bool) and 1 <= user <= MAX_INT64 else None


def render_reviews(status: int = 200, failed: tuple[int, ResolveForm] | None = None) -> tuple[str, int]:
    """The list; ``failed`` is a refused resolution (review id, its form with the errors) shown on its row."""
    filters = ReviewListForm(request.args)
    if not filters.validate():
        status = max(status, 400)
        filters.cursor.data = None
    show_all = bool(filters.all.data)
    rows = security.container().payment_review_service().list(not show_all, PAGE_SIZE + 1, filters.cursor.data)
    items = rows[:PAGE_SIZE]
    next_url = None
    if len(rows) > PAGE_SIZE and items:
        args: dict[str, Any] = {"all": "y"} if show_all else {}
        next_url = url_for("ops.payment_reviews", **args, cursor=items[-1].id)
    forms = {r.id: ResolveForm(formdata=None, prefix=f"r{r.id}") for r in items if r.is_open}
    page_errors: list[str] = []
    if failed is not None:
        review_id, form = failed
        if review_id in forms:
            forms[review_id] = form
        else:  # resolved meanwhile, or not on this page: say it above the list
            page_errors = [f"Payment review {review_id}: {e}" for e in
                           [*form.page_errors, *(f"Note: {m}" for m in form.note.errors)]]
    return render_template("console/payment_reviews.html", items=items, forms=forms, filters=filters,
                           show_all=show_all, next_url=next_url, figures=figures, review_user=review_user,
                           max_note=MAX_RESOLUTION_NOTE, page_errors=page_errors), status


@bp.route("/payment-reviews")
def payment_reviews() -> tuple[str, int]:
    return render_reviews()


@bp.post("/payment-reviews/<int:review_id>/resolve")
def payment_review_resolve(review_id: int) -> Response | tuple[str, int]:
    if review_id > MAX_INT64:
        abort(404, f"There is no payment review {review_id}.")
    form = ResolveForm(prefix=f"r{review_id}")
    if not form.validate():
        return render_reviews(400, (review_id, form))
    assert form.note.data is not None
    actor = security.current_operator().name
    try:
        done = security.container().payment_review_service().resolve(review_id, form.note.data, actor=actor)
    except NotFound:
        abort(404, f"There is no payment review {review_id}.")
    except DomainError as exc:
        if isinstance(exc, ValidationError):
            form.fail(exc)
        else:
            form.page_errors.append(exc.message)
        return render_reviews(400 if isinstance(exc, ValidationError) else 409, (review_id, form))
    log.info("payment review resolved from the console", extra={
        "event": "ops_payment_review_resolved", "review_id": review_id, "kind": done.kind, "actor": actor})
    flash(f"Payment review {review_id} ({done.kind}) is resolved.", "ok")
    return redirect(url_for("ops.payment_reviews"), 303)
