"""Sign-in and sign-out (SPEC 14): named operators; throttled per name and address (domain.operators)."""

from __future__ import annotations

import logging

from flask import redirect, render_template, request, url_for
from werkzeug.wrappers import Response
from wtforms import PasswordField, StringField
from wtforms.validators import InputRequired, Length

from domain.operators import SignInRefused
from entrypoints.console import security
from entrypoints.console.blueprint import bp
from entrypoints.console.forms import ConsoleForm

log = logging.getLogger("starpromo.console")


class SignInForm(ConsoleForm):
    name = StringField("Operator name", validators=[InputRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[InputRequired(), Length(max=256)])


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Response | tuple[str, int] | str:
    form = SignInForm()
    next_url = security.safe_next(request.values.get("next"))
    if request.method == "POST" and form.validate():
        assert form.name.data is not None and form.password.data is not None
        try:
            op = security.operator_service().sign_in(form.name.data, form.password.data, security.client())
        except SignInRefused as exc:
            log.info("sign-in refused", extra={"event": "ops_sign_in_refused", "client": security.client(),
                                                "throttled": exc.retry_after_seconds is not None})
            if exc.retry_after_seconds is not None:
                minutes = max(1, (exc.retry_after_seconds + 59) // 60)
                form.page_errors.append(f"Too many failed sign-ins. Try again in {minutes} minute(s).")
                status = 429
            else:
                form.page_errors.append("Wrong operator name or password.")
                status = 401
            form.password.data = ""
            return render_template("console/sign_in.html", form=form, next_url=next_url), status
        security.start_session(op)
        log.info("signed in", extra={"event": "ops_signed_in", "operator": op.name, "client": security.client()})
        return redirect(next_url)
    status = 400 if request.method == "POST" else 200
    return render_template("console/sign_in.html", form=form, next_url=next_url), status


@bp.route("/sign-out", methods=["POST"])
def sign_out() -> Response:
    security.end_session()
    return redirect(url_for("ops.sign_in"))
