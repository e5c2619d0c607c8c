"""Code lookup (SPEC 14): support types a code and sees its code row, its campaign and its redemptions.

The typed code is kept nowhere: it is sent by POST (never in an address), looked up by hash (``CodeService.lookup``
writes no attempt and logs nothing), and answered with a redirect to ``/ops/codes/<id>``, a page that knows the code
only by id, prefix and hash. A miss or a bad code shows the lookup page again with an empty field. The lookup is a
read: viewers may use it too (``security.ANY_ROLE_POSTS``); its POST still needs the CSRF token.
"""

from __future__ import annotations

from flask import abort, current_app, redirect, render_template, request, url_for
from werkzeug.wrappers import Response
from wtforms import IntegerField, StringField
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from domain.codes import MAX_RAW_CODE_LENGTH
from domain.errors import DomainError, NotFound
from domain.model import Campaign, CampaignStatus
from entrypoints.console import security
from entrypoints.console.blueprint import bp
from entrypoints.console.forms import ConsoleForm
from entrypoints.console.views.campaigns import template_helpers
from entrypoints.http.convert import MAX_INT64

REDEMPTIONS_PAGE_SIZE = 50
# The endpoint that pauses or resumes one code (views/campaign_codes.py).
CODE_STATUS_ENDPOINT = "ops.code_status"


class LookupForm(ConsoleForm):
    code = StringField("Code", validators=[InputRequired(message="type the code to look up"),
                                           Length(max=MAX_RAW_CODE_LENGTH,
                                                  message=f"at most {MAX_RAW_CODE_LENGTH} characters")])


class RedemptionPageForm(ConsoleForm):
    cursor = IntegerField("Cursor", validators=[Optional(), NumberRange(min=1, max=MAX_INT64)])


def _render_lookup(form: LookupForm, status: int) -> tuple[str, int]:
    form.code.data = ""  # never echo the typed code
    form.code.raw_data = []
    return render_template("console/code_lookup.html", form=form), status


@bp.route("/codes/lookup", methods=["GET", "POST"])
def code_lookup() -> Response | tuple[str, int]:
    form = LookupForm()
    if request.method != "POST":
        return _render_lookup(form, 200)
    if not form.validate():
        return _render_lookup(form, 400)
    assert form.code.data is not None
    try:
        found = security.container().code_service().lookup(form.code.data)
    except NotFound:
        form.page_errors.append("No code matches. Check the code and type it again.")
        return _render_lookup(form, 404)
    except DomainError as exc:
        form.fail(exc)
        return _render_lookup(form, 400)
    assert found.code.id is not None
    return redirect(url_for("ops.code", code_id=found.code.id), 303)


def terms_summary(c: Campaign) -> str:
    """A campaign's terms in one line: what it gives, on what, to whom."""
    if c.discount_percent is not None:
        gives = f"{c.discount_percent} % off"
    elif c.discount_stars is not None:
        gives = f"{c.discount_stars:,} Stars off"
    elif c.grant_plan_code:
        gives = f"{c.grant_plan_code} for {c.grant_days} days"
    else:
        gives = c.promo_type.value
    products = ", ".join(c.applicable_products) if c.applicable_products else "every product"
    scope = "first purchase only" if c.target_scope.value == "FIRST_PURCHASE_ONLY" else "every user"
    return f"{gives} · {products} · {scope}"


@bp.route("/codes/<int:code_id>")
def code(code_id: int) -> tuple[str, int]:
    if code_id > MAX_INT64:
        abort(404, f"There is no code {code_id}.")
    container = security.container()
    page_form = RedemptionPageForm(request.args)
    status = 200
    cursor = None
    if page_form.validate():
        cursor = page_form.cursor.data
    else:
        status = 400
    try:
        found = container.code_service().get_with_campaign(code_id)
        redemptions = container.code_service().redemptions(code_id, REDEMPTIONS_PAGE_SIZE, cursor)
    except NotFound:
        abort(404, f"There is no code {code_id}.")
    promo_code, campaign = found.code, found.campaign
    next_url = (url_for("ops.code", code_id=code_id, cursor=redemptions.next_cursor, _anchor="redemptions")
                if redemptions.next_cursor is not None else None)
    can_change = (CODE_STATUS_ENDPOINT in current_app.view_functions
                  and promo_code.status in (CampaignStatus.ACTIVE, CampaignStatus.PAUSED))
    return render_template("console/code.html", code=promo_code, campaign=campaign, redemptions=redemptions,
                           next_url=next_url, page_form=page_form, terms=terms_summary(campaign),
                           status_endpoint=CODE_STATUS_ENDPOINT if can_change else None,
                           **template_helpers()), status
