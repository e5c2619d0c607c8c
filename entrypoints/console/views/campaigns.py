"""Campaigns (SPEC 14): the list (search, status and type filters, paging), a new campaign, and the campaign page
(terms, budget, codes by status, metrics and charts, its codes by prefix and status) with the admin changes of the
whole campaign: pause/resume, and ``valid_until`` / budget / per-user limit. Generating and importing codes and one
code's pause/resume: views/campaign_codes.py."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from domain.campaigns import CampaignSpec
from domain.code_files import parse_campaign_fields
from domain.errors import DomainError, InvalidChange, InvalidTransition, NotFound, ValidationError
from domain.model import UNCHANGED, Campaign, CampaignChanges, CampaignFilter, CampaignStatus, CodeFilter, PromoType
from entrypoints.console import security
from entrypoints.console.blueprint import bp
from entrypoints.console.charts import usage_bar
from entrypoints.console.forms import ConsoleForm
from entrypoints.console.views.campaign_forms import (
    CREATE_FIELD_NAMES,
    SCOPE_LABELS,
    TYPE_LABELS,
    CampaignFilterForm,
    CampaignForm,
    ChangeForm,
    CodeFilterForm,
    CodeStatusForm,
    GenerateForm,
    ImportForm,
    StatusForm,
    parse_moment,
    parse_whole,
)
from entrypoints.console.views.overview import WindowForm, charts
from entrypoints.http.convert import MAX_INT64

log = logging.getLogger("starpromo.console")

PAGE_SIZE = 50
CODES_PAGE_SIZE = 50


def known_id(value: int, what: str) -> int:
    """An id from the path: beyond BIGINT none can exist (the 404 page, not a database error)."""
    if value > MAX_INT64:
        abort(404, f"There is no {what} {value}.")
    return value


def operator_name() -> str:
    return security.current_operator().name


def error_status(exc: DomainError) -> int:
    """400 for bad input, 409 for a change or transition the rules refuse."""
    return 409 if isinstance(exc, (InvalidChange, InvalidTransition)) else 400


def fail(form: ConsoleForm, exc: DomainError, field_names: dict[str, str] | None = None) -> int:
    """Show ``exc`` on ``form`` (next to the field it names, when it names one) and return the page's status."""
    field = exc.details.get("field") if isinstance(exc.details, dict) else None
    name = (field_names or {}).get(field, field) if isinstance(field, str) else None
    target = getattr(form, name, None) if name else None
    if not isinstance(exc, ValidationError) and target is not None and hasattr(target, "errors"):
        target.errors = [*(target.errors or []), exc.message]
    else:
        form.fail(exc, field_names)
    return error_status(exc)


def template_helpers() -> dict[str, Any]:
    return {"type_label": lambda t: TYPE_LABELS.get(t, str(t)), "scope_label": lambda s: SCOPE_LABELS.get(s, str(s)),
            "usage_bar": usage_bar}


# --- the list -----------------------------------------------------------------------------------------


@bp.route("/campaigns")
def campaigns() -> tuple[str, int]:
    form = CampaignFilterForm(request.args)
    page = None
    status = 200
    if form.validate():
        flt = CampaignFilter(
            status=CampaignStatus(form.status.data) if form.status.data else None,
            promo_type=PromoType(form.promo_type.data) if form.promo_type.data else None,
            name_contains=form.name.data,
        )
        try:
            page = security.container().campaign_service().list_campaigns(flt, PAGE_SIZE, form.cursor.data)
        except DomainError as exc:
            status = fail(form, exc, {"name_contains": "name"})
    else:
        status = 400
    return render_template("console/campaigns.html", form=form, page=page, **template_helpers()), status


# --- a new campaign -----------------------------------------------------------------------------------


def _product_choices() -> list[tuple[str, str]]:
    return [(p.code, f"{p.code} — {p.title}") for p in security.container().products()]


def _spec_from(form: CampaignForm, now: datetime) -> CampaignSpec | None:
    """The campaign the form describes, or None with every problem next to its field."""
    errors: list[dict[str, str]] = []
    moments: dict[str, str | None] = {}
    for field in (form.valid_from, form.valid_until):
        text = (field.data or "").strip()
        moments[field.name] = None
        if text:
            try:
                moments[field.name] = parse_moment(text).isoformat()
            except ValueError as exc:
                errors.append({"field": field.name, "message": str(exc)})
    values: dict[str, str | None] = {
        "campaign_name": form.name.data, "promo_type": form.promo_type.data,
        "discount_percent": form.discount_percent.data, "discount_stars": form.discount_stars.data,
        "grant_plan_code": form.grant_plan_code.data, "grant_days": form.grant_days.data,
        "target_scope": form.target_scope.data, "applicable_products": ",".join(form.applicable_products.data or []),
        "campaign_max_total_uses": form.max_total_uses.data, "per_user_limit": form.per_user_limit.data,
        **moments,
    }
    terms, found = parse_campaign_fields(values, now, security.container().products().codes)
    bad = {e["field"] for e in errors}
    errors += [e for e in found if e["field"] not in bad]
    if errors or terms is None:
        form.fail(ValidationError(errors), CREATE_FIELD_NAMES)
        return None
    return terms.spec


@bp.route("/campaigns/new", methods=["GET", "POST"])
def campaign_new() -> Response | tuple[str, int]:
    if not security.is_admin():  # a viewer is shown no change control, not even by typing this address
        abort(403, "Only an admin may create campaigns: your role (viewer) reads only.")
    form = CampaignForm()
    form.applicable_products.choices = _product_choices()
    status = 200
    if request.method == "POST":
        status = 400
        if form.validate():
            container = security.container()
            spec = _spec_from(form, container.clock().now())
            if spec is not None:
                try:
                    campaign, _ = container.campaign_service().create(spec, actor=operator_name())
                except DomainError as exc:
                    status = fail(form, exc)
                else:
                    log.info("campaign created", extra={
                        "event": "promo_campaign_created", "campaign_id": campaign.id,
                        "promo_type": campaign.promo_type.value, "actor": operator_name()})
                    flash(f"Campaign {campaign.name!r} created. Add codes to it below: generate or import them.", "ok")
                    return redirect(url_for("ops.campaign", campaign_id=campaign.id))
    return render_template("console/campaign_new.html", form=form), status


# --- the campaign page --------------------------------------------------------------------------------


def get_campaign(campaign_id: int) -> Campaign:
    """The campaign, or the 404 page."""
    known_id(campaign_id, "campaign")
    try:
        return security.container().campaign_service().get(campaign_id).campaign
    except NotFound:
        abort(404, f"There is no campaign {campaign_id}.")


def render_campaign_page(campaign_id: int, status: int = 200, **forms: ConsoleForm) -> tuple[str, int]:
    """The campaign page; ``forms`` replaces the blank admin forms (a refused POST shows its form with its errors).
    NotFound -> the 404 page."""
    known_id(campaign_id, "campaign")
    container = security.container()
    try:
        view = container.campaign_service().get(campaign_id)
    except NotFound:
        abort(404, f"There is no campaign {campaign_id}.")
    campaign = view.campaign
    window = WindowForm(request.args)
    if not window.validate():
        window.window_hours.data = "24"
        status = max(status, 400)
    stats = container.report_service().campaign_stats(campaign_id, int(window.window_hours.data or 24))

    code_filter = CodeFilterForm(request.args)
    codes = None
    next_url = None
    if code_filter.validate():
        flt = CodeFilter(campaign_id=campaign_id, code_prefix=code_filter.code_prefix.data,
                         status=CampaignStatus(code_filter.code_status.data) if code_filter.code_status.data else None)
        try:
            codes = container.code_service().list_codes(flt, CODES_PAGE_SIZE, code_filter.cursor.data)
        except DomainError as exc:
            status = max(status, fail(code_filter, exc))
        else:
            if codes.next_cursor is not None:
                args: dict[str, Any] = {k: v for k, v in request.args.items()
                                        if k in ("window_hours", "code_prefix", "code_status")}
                next_url = url_for("ops.campaign", campaign_id=campaign_id, **args, cursor=codes.next_cursor,
                                   _anchor="codes")
    else:
        status = max(status, 400)

    blank: dict[str, type[ConsoleForm]] = {"status_form": StatusForm, "change_form": ChangeForm,
                                           "generate_form": GenerateForm, "import_form": ImportForm,
                                           "code_form": CodeStatusForm}
    page_forms = {name: forms[name] if name in forms else cls(formdata=None) for name, cls in blank.items()}
    back = {k: v for k, v in request.args.items() if k in ("code_prefix", "code_status", "cursor")}
    return render_template(
        "console/campaign.html", view=view, c=campaign, stats=stats, charts=charts(stats["series"]), window=window,
        code_filter=code_filter, codes=codes, next_url=next_url, back=back,
        **page_forms, **template_helpers(),
    ), status


@bp.route("/campaigns/<int:campaign_id>")
def campaign(campaign_id: int) -> tuple[str, int]:
    return render_campaign_page(campaign_id)


@bp.post("/campaigns/<int:campaign_id>/status")
def campaign_status(campaign_id: int) -> Response | tuple[str, int]:
    known_id(campaign_id, "campaign")
    form = StatusForm()
    if not form.validate():
        return render_campaign_page(campaign_id, 400, status_form=form)
    target = CampaignStatus(form.status.data or "")
    try:
        campaign = security.container().campaign_service().set_status(
            campaign_id, target, actor=operator_name(), reason=form.reason.data)
    except NotFound:
        abort(404, f"There is no campaign {campaign_id}.")
    except DomainError as exc:
        return render_campaign_page(campaign_id, fail(form, exc), status_form=form)
    log.info("campaign status set", extra={"event": "promo_campaign_status_set", "campaign_id": campaign_id,
                                           "status": campaign.status.value, "actor": operator_name()})
    flash(f"Campaign {campaign.name!r} is {'paused' if target is CampaignStatus.PAUSED else 'active'} now.", "ok")
    return redirect(url_for("ops.campaign", campaign_id=campaign_id))


def _changes_from(form: ChangeForm) -> CampaignChanges:
    """The change the form asks for (an empty field: unchanged; a box: cleared). ValidationError names the field."""
    errors: list[dict[str, str]] = []
    until: Any = UNCHANGED
    if form.no_end.data:
        if form.valid_until.data:
            errors.append({"field": "valid_until", "message": "give a date or tick No end date, not both"})
        until = None
    elif form.valid_until.data:
        try:
            until = parse_moment(form.valid_until.data)
        except ValueError as exc:
            errors.append({"field": "valid_until", "message": str(exc)})
    budget: Any = UNCHANGED
    if form.no_limit.data:
        if form.max_total_uses.data:
            errors.append({"field": "max_total_uses", "message": "give a number or tick No limit, not both"})
        budget = None
    elif form.max_total_uses.data:
        try:
            budget = parse_whole(form.max_total_uses.data)
        except ValueError as exc:
            errors.append({"field": "max_total_uses", "message": str(exc)})
    per_user: Any = UNCHANGED
    if form.per_user_limit.data:
        try:
            per_user = parse_whole(form.per_user_limit.data)
        except ValueError as exc:
            errors.append({"field": "per_user_limit", "message": str(exc)})
    if errors:
        raise ValidationError(errors)
    return CampaignChanges(valid_until=until, max_total_uses=budget, per_user_limit=per_user)


def _changed_text(campaign: Campaign, fields: list[str]) -> str:
    parts = []
    for field in fields:
        value = getattr(campaign, field)
        if field == "valid_until":
            parts.append(f"valid until {value:%Y-%m-%d %H:%M} UTC" if value else "no end date")
        elif field == "max_total_uses":
            parts.append(f"budget {value:,}" if value is not None else "no budget limit")
        else:
            parts.append(f"per-user limit {value}")
    return ", ".join(parts)


@bp.post("/campaigns/<int:campaign_id>/change")
def campaign_change(campaign_id: int) -> Response | tuple[str, int]:
    known_id(campaign_id, "campaign")
    form = ChangeForm()
    if not form.validate():
        return render_campaign_page(campaign_id, 400, change_form=form)
    try:
        changes = _changes_from(form)
    except ValidationError as exc:
        form.fail(exc)
        return render_campaign_page(campaign_id, 400, change_form=form)
    fields = list(changes.changed())
    if not fields:
        form.page_errors.append("Nothing to change: fill in a field (or tick a box) first.")
        return render_campaign_page(campaign_id, 400, change_form=form)
    try:
        campaign = security.container().campaign_service().change(campaign_id, changes, actor=operator_name())
    except NotFound:
        abort(404, f"There is no campaign {campaign_id}.")
    except DomainError as exc:
        return render_campaign_page(campaign_id, fail(form, exc), change_form=form)
    log.info("campaign changed", extra={"event": "promo_campaign_changed", "campaign_id": campaign_id,
                                        "fields": sorted(fields), "actor": operator_name()})
    flash(f"Saved: {_changed_text(campaign, fields)}.", "ok")
    return redirect(url_for("ops.campaign", campaign_id=campaign_id))
