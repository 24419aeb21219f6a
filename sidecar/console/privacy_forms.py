"""The privacy officer's forms: access log filters, closing an alert, a subject access request."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from typing import Any

from govuk_frontend_wtf.wtforms_widgets import (
    GovCharacterCount,
    GovSelect,
    GovSubmitInput,
    GovTextInput,
)
from wtforms import (
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
    ValidationError,
)
from wtforms.validators import InputRequired, Length

from sidecar.audit.trail import AuditFilter
from sidecar.console.forms import (
    ConsoleForm,
    GovDateField,
    ReferenceCheck,
    kind_field,
    options,
    reference_field,
)
from sidecar.lookup.alerts import CLOSE_NOTE_MAX

ACTION = re.compile(r"^[a-z_]+(\.[a-z_]+)*$")


class AccessLogForm(ConsoleForm):
    """Filters on the access log; a GET form that changes nothing."""

    class Meta(ConsoleForm.Meta):
        csrf = False

    kind = SelectField(
        "Customer or property",
        choices=options([("", "Any"), ("customer", "Customer"), ("property", "Property")]),
        validate_choice=False,
        default="",
        widget=GovSelect(),
    )
    ref = StringField(
        "Reference",
        description="The customer's CRM reference or the property's UPRN",
        widget=GovTextInput(),
        validators=[
            Length(max=64, message="A reference is 64 characters at most"),
            ReferenceCheck(),
        ],
    )
    actor = StringField(
        "Staff member",
        description="Their user id, for example demo.officer",
        widget=GovTextInput(),
        validators=[Length(max=128, message="A user id is 128 characters at most")],
    )
    action = StringField(
        "Action",
        description="For example flag.read, details.read or sign_in",
        widget=GovTextInput(),
        validators=[Length(max=64, message="An action is 64 characters at most")],
    )
    outcome = SelectField(
        "Outcome",
        choices=options([("", "Any"), ("allowed", "Allowed"), ("denied", "Refused")]),
        validate_choice=False,
        default="",
        widget=GovSelect(),
    )
    start = GovDateField(
        "From",
        description="The first day to include, for example 1 3 2026",
        invalid="The first day must be a real date, for example 1 3 2026",
    )
    end = GovDateField(
        "To",
        description="The last day to include, for example 31 3 2026",
        invalid="The last day must be a real date, for example 31 3 2026",
    )
    submit = SubmitField("Show entries", widget=GovSubmitInput())

    def validate_kind(self, field: Any) -> None:
        if field.data not in ("", "customer", "property"):
            raise ValidationError("Choose a customer, a property or any")

    def validate_ref(self, field: Any) -> None:
        if (field.data or "").strip() and not self.kind.data:
            raise ValidationError("Choose whether the reference is a customer's or a property's")

    def validate_action(self, field: Any) -> None:
        if (field.data or "").strip() and not ACTION.match(field.data.strip()):
            raise ValidationError("Enter an action in lower case with dots, for example flag.read")

    def validate_outcome(self, field: Any) -> None:
        if field.data not in ("", "allowed", "denied"):
            raise ValidationError("Choose allowed, refused or any")

    def validate_end(self, field: Any) -> None:
        if field.data and self.start.data and field.data < self.start.data:
            raise ValidationError("The last day must be the same as or after the first day")

    def where(self) -> AuditFilter:
        """The filters chosen, as the trail's own filter; days are whole UTC days."""
        ref = (self.ref.data or "").strip()
        return AuditFilter(
            kind=self.kind.data or None,
            ref=ref or None,
            actor=(self.actor.data or "").strip() or None,
            action=(self.action.data or "").strip() or None,
            start=_day(self.start.data),
            end=_day(self.end.data, after=True),
            outcome=self.outcome.data or None,
        )


def _day(value: Any, *, after: bool = False) -> datetime | None:
    if value is None:
        return None
    moment = datetime.combine(value, time.min, tzinfo=UTC)
    return moment + timedelta(days=1) if after else moment


class VerifyForm(ConsoleForm):
    submit = SubmitField("Verify the access log", widget=GovSubmitInput())


class CloseAlertForm(ConsoleForm):
    note = TextAreaField(
        "What did you find, and what was done?",
        description="For example, the officer had a home visit booked; their manager confirmed it.",
        widget=GovCharacterCount(),
        validators=[
            InputRequired(message="Say what you found or did before closing the alert"),
            Length(
                max=CLOSE_NOTE_MAX,
                message=f"Keep the note to {CLOSE_NOTE_MAX:,} characters",
            ),
        ],
    )
    submit = SubmitField("Close the alert", widget=GovSubmitInput())

    def validate_note(self, field: Any) -> None:
        if not (field.data or "").strip():
            raise ValidationError("Say what you found or did before closing the alert")


class SarForm(ConsoleForm):
    """Whose subject access request; a GET form that changes nothing."""

    class Meta(ConsoleForm.Meta):
        csrf = False

    kind = kind_field("Who or what is the request about?", default="customer")
    ref = reference_field()
    request_ref = StringField(
        "Request reference",
        description="The reference the request was logged under when it arrived",
        widget=GovTextInput(),
        validators=[
            InputRequired(message="Enter the request's reference"),
            Length(max=64, message="A request reference is 64 characters at most"),
        ],
    )
    submit = SubmitField("Prepare the export", widget=GovSubmitInput())
