"""Helpers of the campaign page tests (test_campaign_pages.py, test_campaign_codes_pages.py)."""

from __future__ import annotations

import csv
import io
import re

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from domain.campaigns import CampaignSpec
from domain.model import Campaign, CodeFilter, PromoCode, PromoType
from entrypoints.container import Container

CHANGE_CONTROLS = ("Pause campaign", "Resume campaign", "Save changes", "Generate codes", "Import CSV", "Pause code",
                   "Resume code", "New campaign")


def make_campaign(container: Container, name: str = "Spring sale", **terms: object) -> Campaign:
    values: dict[str, object] = {"promo_type": PromoType.PERCENT_DISCOUNT, "discount_percent": 20, **terms}
    campaign, _ = container.campaign_service().create(CampaignSpec(name=name, **values),  # type: ignore[arg-type]
                                                      actor="cli:test")
    return campaign


def campaign_id(campaign: Campaign) -> int:
    assert campaign.id is not None
    return campaign.id


def codes_of(container: Container, cid: int) -> list[PromoCode]:
    return container.code_service().list_codes(CodeFilter(campaign_id=cid), 200).items


def code_count(container: Container, cid: int) -> int:
    return container.campaign_service().get(cid).codes_total


def error_of(html: str, field_id: str) -> str:
    """The error text shown next to the field ``field_id`` ('' when none)."""
    match = re.search(rf'<(p|div) class="error" id="{re.escape(field_id)}-error">(.*?)</\1>', html, re.S)
    return match.group(2) if match else ""


def report_rows(body: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body)))


def generate(client: FlaskClient, token: str, cid: int, count: int, **extra: str) -> list[dict[str, str]]:
    response = client.post(f"/ops/campaigns/{cid}/generate",
                           data={"csrf_token": token, "count": str(count), "confirm": "yes", **extra})
    assert response.status_code == 200, response.text
    return report_rows(response.text)


def upload(client: FlaskClient, token: str, cid: int, text: str, confirm: bool = True) -> TestResponse:
    data: dict[str, object] = {"csrf_token": token, "csv": (io.BytesIO(text.encode()), "codes.csv")}
    if confirm:
        data["confirm"] = "yes"
    return client.post(f"/ops/campaigns/{cid}/import", data=data, content_type="multipart/form-data")
