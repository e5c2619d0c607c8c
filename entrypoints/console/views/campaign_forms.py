"""The forms of the campaign pages (views/campaigns.py, views/campaign_codes.py) and the console's reading of what
an operator types: whole numbers, and dates and times (a ``datetime-local`` input sends no timezone: UTC).

The campaign fields themselves are judged by ``domain.code_files.parse_campaign_fields``, as the CLI's flags and an
import file's cells are, so a bad value gets the same message everywhere."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from wtforms import BooleanField, FileField, HiddenField, IntegerField, SelectField, SelectMultipleField, StringField
from wtforms.validators import AnyOf, InputRequired, Length, NumberRange, Optional

from domain.batch import DEFAULT_CODE_LENGTH, MAX_CODE_LENGTH, MIN_CODE_LENGTH
from domain.campaigns import MAX_CAMPAIGN_NAME, MAX_REASON
from domain.model import CampaignStatus, PromoType, TargetScope
from entrypoints.console.forms import ConsoleForm, blank_to_none
from entrypoints.http.convert import MAX_INT64

# The console generates at most this many codes per request (the report is built in memory); the CLI does more.
MAX_CONSOLE_GENERATE = 100_000
MAX_NUMBER_TEXT = 18

TYPE_LABELS = {
    PromoType.PERCENT_DISCOUNT: "Percent discount",
    PromoType.STARS_DISCOUNT: "Stars discount",
    PromoType.PREMIUM_GRANT: "Premium grant",
}
SCOPE_LABELS = {TargetScope.ALL: "Every user", TargetScope.FIRST_PURCHASE_ONLY: "First purchase only"}
STATUS_CHOICES = [(s.value, s.value) for s in CampaignStatus]
TYPE_CHOICES = [(t.value, TYPE_LABELS[t]) for t in PromoType]
ADMIN_STATUSES = (CampaignStatus.ACTIVE.value, CampaignStatus.PAUSED.value)

# ``parse_campaign_fields`` names fields after the import columns; the create form after the campaign.
CREATE_FIELD_NAMES = {"campaign_name": "name", "campaign_max_total_uses": "max_total_uses"}


def parse_moment(text: str) -> datetime:
    """A date and time as typed: ISO 8601 (``2026-12-31T23:59``, ``2026-12-31``, or with ``Z``/an offset); without
    a timezone it is UTC. Returned in UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError("must be a date and time, e.g. 2026-12-31T23:59 (UTC)") from None
    if moment.utcoffset() is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_whole(text: str) -> int:
    """A whole number as typed (digits only, at most 18)."""
    value = text.strip().replace(",", "").replace("_", "")
    if not value.isdecimal() or not value.isascii() or len(value) > MAX_NUMBER_TEXT:
        raise ValueError("must be a whole number")
    return int(value)


class WholeField(IntegerField):
    """A whole number typed in a box (``parse_whole``'s rules and message); empty: None."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        self.data = None
        if valuelist and str(valuelist[0]).strip():
            self.data = parse_whole(str(valuelist[0]))  # a ValueError becomes the field's error


# --- the campaigns list -------------------------------------------------------------------------------


class CampaignFilterForm(ConsoleForm):
    name = StringField("Search by name", validators=[Optional(), Length(max=MAX_CAMPAIGN_NAME)],
                       filters=[blank_to_none])
    status = SelectField("Status", choices=[("", "any"), *STATUS_CHOICES], default="")
    promo_type = SelectField("Type", choices=[("", "any"), *TYPE_CHOICES], default="")
    cursor = IntegerField("Cursor", validators=[Optional(), NumberRange(min=1, max=MAX_INT64)])


# --- a new campaign -----------------------------------------------------------------------------------


class CampaignForm(ConsoleForm):
    """Every field is read as text and judged by ``parse_campaign_fields`` (the CLI's and the import's rules)."""

    name = StringField("Name")
    promo_type = SelectField("Type", choices=[("", "choose a type"), *TYPE_CHOICES], default="")
    discount_percent = StringField("Discount percent")
    discount_stars = StringField("Discount Stars")
    grant_plan_code = StringField("Grant plan")
    grant_days = StringField("Grant days")
    target_scope = SelectField("Target scope", choices=[(s.value, SCOPE_LABELS[s]) for s in TargetScope],
                               default=TargetScope.ALL.value)
    valid_from = StringField("Valid from")
    valid_until = StringField("Valid until")
    applicable_products = SelectMultipleField("Applicable products", choices=[], validate_choice=False)
    max_total_uses = StringField("Budget (max total uses)")
    per_user_limit = StringField("Per-user limit", default="1")


# --- the campaign page ---------------------------------------------------------------------------------


class CodeFilterForm(ConsoleForm):
    code_prefix = StringField("Code prefix", validators=[Optional(), Length(max=4)], filters=[blank_to_none])
    code_status = SelectField("Code status", choices=[("", "any"), *STATUS_CHOICES], default="")
    cursor = IntegerField("Cursor", validators=[Optional(), NumberRange(min=1, max=MAX_INT64)])


class StatusForm(ConsoleForm):
    """Pause or resume the campaign (``status`` is a hidden field; the button says which)."""

    status = HiddenField("Status", validators=[AnyOf(ADMIN_STATUSES, message="must be ACTIVE or PAUSED")])
    reason = StringField("Reason", validators=[Optional(), Length(max=MAX_REASON)], filters=[blank_to_none])


class ChangeForm(ConsoleForm):
    """An empty field leaves its value as it is; the boxes clear ``valid_until`` and the budget."""

    valid_until = StringField("Valid until", filters=[blank_to_none])
    no_end = BooleanField("No end date")
    max_total_uses = StringField("Budget (max total uses)", filters=[blank_to_none])
    no_limit = BooleanField("No limit")
    per_user_limit = StringField("Per-user limit", filters=[blank_to_none])


class GenerateForm(ConsoleForm):
    count = WholeField("Number of codes", validators=[
        InputRequired(message="required"),
        NumberRange(1, MAX_CONSOLE_GENERATE, message=f"must be 1..{MAX_CONSOLE_GENERATE:,}")])
    prefix = StringField("Prefix", validators=[Optional(), Length(max=MAX_CODE_LENGTH)], filters=[blank_to_none])
    length = WholeField("Code length", default=DEFAULT_CODE_LENGTH, validators=[
        Optional(),
        NumberRange(MIN_CODE_LENGTH, MAX_CODE_LENGTH, message=f"must be {MIN_CODE_LENGTH}..{MAX_CODE_LENGTH}")])
    code_max_total_uses = WholeField("Uses per code", validators=[
        Optional(), NumberRange(min=1, message="must be at least 1, or empty")])
    confirm = BooleanField("I understand these codes are shown only in this one download", id="generate-confirm")


class ImportForm(ConsoleForm):
    csv = FileField("CSV file")
    confirm = BooleanField("I understand an import cannot be undone", id="import-confirm")


class CodeStatusForm(ConsoleForm):
    """Pause or resume one code; the code filter of the campaign page rides along, for the way back."""

    status = HiddenField("Status", validators=[AnyOf(ADMIN_STATUSES, message="must be ACTIVE or PAUSED")])
    code_prefix = HiddenField("Code prefix")
    code_status = HiddenField("Code status")
    cursor = HiddenField("Cursor")
    back = HiddenField("Back to")  # "code": back to the code's own page
