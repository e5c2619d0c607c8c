"""The audit log (SPEC 14): newest first, filtered by actor, action and target."""

from __future__ import annotations

from flask import render_template, request
from wtforms import IntegerField, SelectField, StringField
from wtforms.validators import Length, NumberRange, Optional

from domain.audit import ACTIONS, TARGET_TYPES
from domain.errors import DomainError
from domain.model import AuditFilter
from entrypoints.console import security
from entrypoints.console.blueprint import bp
from entrypoints.console.forms import ConsoleForm, blank_to_none
from entrypoints.http.convert import MAX_INT64

PAGE_SIZE = 50


class AuditFilterForm(ConsoleForm):
    actor = StringField("Actor", validators=[Optional(), Length(max=64)], filters=[blank_to_none])
    action = SelectField("Action", choices=[("", "any"), *((a, a) for a in ACTIONS)], default="")
    target_type = SelectField("Target type", choices=[("", "any"), *((t, t) for t in TARGET_TYPES)], default="")
    target_id = StringField("Target id", validators=[Optional(), Length(max=64)], filters=[blank_to_none])
    cursor = IntegerField("Cursor", validators=[Optional(), NumberRange(min=1, max=MAX_INT64)])


@bp.route("/audit")
def audit_log() -> tuple[str, int]:
    form = AuditFilterForm(request.args)
    page = None
    status = 200
    if form.validate():
        flt = AuditFilter(actor=form.actor.data, action=form.action.data or None,
                          target_type=form.target_type.data or None, target_id=form.target_id.data)
        try:
            page = security.container().audit_service().list_entries(flt, PAGE_SIZE, form.cursor.data)
        except DomainError as exc:
            form.fail(exc)
            status = 400
    else:
        status = 400
    return render_template("console/audit.html", form=form, page=page), status
