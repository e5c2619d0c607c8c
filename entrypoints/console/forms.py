"""Form plumbing shared by the console pages: WTForms for parsing and per-field errors, domain errors
put back next to the field they name, and page-wide problems shown above the form."""

from __future__ import annotations

from typing import Any

from flask import request
from werkzeug.datastructures import CombinedMultiDict
from wtforms import Field, Form

from domain.errors import DomainError, ValidationError


class _FromRequest:
    """The default ``formdata``: the request's form fields and files on a POST, nothing otherwise."""


FROM_REQUEST = _FromRequest()


class ConsoleForm(Form):
    """A console form over WTForms. CSRF is checked once for every POST by the blueprint (security.py), not per
    form. Built without ``formdata`` it reads the POSTed fields and files (like Flask-WTF's ``FlaskForm``)."""

    def __init__(self, formdata: Any = FROM_REQUEST, **kwargs: Any) -> None:
        if isinstance(formdata, _FromRequest):
            formdata = CombinedMultiDict([request.files, request.form]) if request.method == "POST" else None
        super().__init__(formdata, **kwargs)
        self.page_errors: list[str] = []

    def fail(self, exc: DomainError, field_names: dict[str, str] | None = None) -> None:
        """Show ``exc`` on this form: a ``ValidationError``'s entries next to their fields (``field_names``
        maps a domain field name to a form field name where they differ), anything else above the form."""
        if isinstance(exc, ValidationError):
            for entry in exc.errors:
                name = (field_names or {}).get(entry["field"], entry["field"])
                field = getattr(self, name, None)
                if isinstance(field, Field):
                    field.errors = [*(field.errors or []), entry["message"]]
                else:
                    self.page_errors.append(f"{entry['field']}: {entry['message']}")
            return
        self.page_errors.append(exc.message)


def blank_to_none(value: Any) -> Any:
    """WTForms filter: an empty text box means "not given"."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value
