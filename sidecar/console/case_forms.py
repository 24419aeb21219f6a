"""The forms that follow a live flag: notice, appeals, reviews, withdrawal, expiry, reports."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from govuk_frontend_wtf.wtforms_widgets import (
    GovCheckboxesInput,
    GovRadioInput,
    GovSubmitInput,
    GovTextArea,
    GovTextInput,
)
from wtforms import (
    RadioField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
    ValidationError,
)
from wtforms.validators import InputRequired, Length, StopValidation

from sidecar.console.forms import ConsoleForm, GovDateField, choices, not_in_future, options
from sidecar.register.flags import TermsChange
from sidecar.register.rules import Restriction
from sidecar.settings import Settings


class NoticeForm(ConsoleForm):
    recipient_name = StringField(
        "Who is the letter to?",
        description="Their name as it goes on the envelope, for example Mr T Example",
        widget=GovTextInput(),
        validators=[
            InputRequired(message="Enter the name of the person the letter is to"),
            Length(max=300, message="Keep the name to 300 characters"),
        ],
    )
    recipient_address = TextAreaField(
        "Their postal address",
        widget=GovTextArea(),
        validators=[
            InputRequired(message="Enter the postal address"),
            Length(max=2000, message="Keep the address to 2,000 characters"),
        ],
    )
    preview = SubmitField("Preview the letter", widget=GovSubmitInput())
    submit = SubmitField("Send the letter", widget=GovSubmitInput())


class GuidanceForm(ConsoleForm):
    legal_guidance_ref = StringField(
        "Legal guidance reference",
        description="The reference of your written guidance, for example LG-2026-014",
        widget=GovTextInput(),
        validators=[
            InputRequired(message="Enter the legal guidance reference"),
            Length(max=256, message="Keep the reference to 256 characters"),
        ],
    )
    reason = TextAreaField(
        "Why must the person not be told?",
        description="Confidential: the Service Director reads it before giving permission.",
        widget=GovTextArea(),
        validators=[
            InputRequired(message="Say why telling the person would put someone at risk"),
            Length(max=20000, message="Keep the reason to 20,000 characters"),
        ],
    )
    submit = SubmitField("Record the guidance", widget=GovSubmitInput())


class PermissionForm(ConsoleForm):
    submit = SubmitField("Give my permission to withhold the letter", widget=GovSubmitInput())


class RefusalForm(ConsoleForm):
    """Shown beside the permission form: its button has an id of its own."""

    refusal_reason = TextAreaField(
        "Why do you refuse permission?",
        description="Everyone who may read the flag's record reads this on its history: "
        "leave out what must stay confidential.",
        widget=GovTextArea(),
        validators=[
            InputRequired(message="Say why you refuse permission to withhold the letter"),
            Length(max=2000, message="Keep the reason to 2,000 characters"),
        ],
    )
    refuse = SubmitField("Refuse permission", widget=GovSubmitInput())

    def validate_refusal_reason(self, field: Any) -> None:
        if not (field.data or "").strip():
            raise ValidationError("Say why you refuse permission to withhold the letter")


class AppealForm(ConsoleForm):
    received_on = GovDateField(
        "When did the appeal arrive?",
        description="The date on which the council received it in writing, for example 27 3 2026",
        invalid="The date the appeal arrived must be a real date, for example 27 3 2026",
        validators=[
            InputRequired(message="Enter the date the appeal arrived, for example 27 3 2026"),
            not_in_future,
        ],
    )
    grounds = TextAreaField(
        "The grounds of the appeal",
        description="What the person says is wrong with the decision. Confidential.",
        widget=GovTextArea(),
        validators=[
            InputRequired(message="Enter the grounds of the appeal"),
            Length(max=20000, message="Keep the grounds to 20,000 characters"),
        ],
    )
    submit = SubmitField("Record the appeal", widget=GovSubmitInput())


class HandlerForm(ConsoleForm):
    manager = RadioField(
        "Which Senior Manager handles the appeal?",
        widget=GovRadioInput(),
        validators=[InputRequired(message="Choose who handles the appeal")],
    )
    submit = SubmitField("Assign the appeal", widget=GovSubmitInput())


def outcome_field(label: str, outcomes: list[tuple[str, str]], missing: str) -> RadioField:
    """A review's or an appeal's outcome, one of `outcomes`."""
    return RadioField(
        label,
        choices=options(outcomes),
        widget=GovRadioInput(),
        validators=[InputRequired(message=missing)],
    )


def reasoning_field(label: str, description: str, missing: str, what: str) -> TextAreaField:
    """Why the outcome was chosen, up to 20,000 characters."""
    return TextAreaField(
        label,
        description=description,
        widget=GovTextArea(),
        validators=[
            InputRequired(message=missing),
            Length(max=20000, message=f"Keep the {what} to 20,000 characters"),
        ],
    )


class AppealDecisionForm(ConsoleForm):
    outcome = outcome_field(
        "Your decision",
        [
            ("upheld", "Uphold the decision: the flag stays as it is"),
            ("varied", "Vary the flag's terms"),
            ("removed", "Remove the flag"),
        ],
        "Choose your decision on the appeal",
    )
    reasons = reasoning_field(
        "Your reasons",
        "They are written into the outcome letter to the person.",
        "Give the reasons for your decision",
        "reasons",
    )
    submit = SubmitField("Record the decision", widget=GovSubmitInput())


class ReviewForm(ConsoleForm):
    outcome = outcome_field(
        "What is the outcome of the review?",
        [
            ("continue", "Continue: the flag stays as it is until the next review"),
            ("vary", "Vary the flag's terms"),
            ("remove", "Remove the flag"),
        ],
        "Choose the outcome of the review",
    )
    notes = reasoning_field(
        "Why?",
        "Your reasoning; a person who was told of the flag gets it in a letter.",
        "Record the review's reasoning",
        "reasoning",
    )
    submit = SubmitField("Record the review", widget=GovSubmitInput())


class ReviewersForm(ConsoleForm):
    reviewers = SelectMultipleField(
        "Who reviews the flag next?",
        description="Select all that apply. Only they may record the review; you cannot "
        "name yourself.",
        widget=GovCheckboxesInput(),
        validators=[InputRequired(message="Choose at least one reviewer")],
    )
    submit = SubmitField("Assign the review", widget=GovSubmitInput())


class WithdrawForm(ConsoleForm):
    reason = TextAreaField(
        "Why is the flag withdrawn?",
        description="Everyone who may read the flag's record reads this.",
        widget=GovTextArea(),
        validators=[
            InputRequired(message="Say why the flag is withdrawn"),
            Length(max=2000, message="Keep the reason to 2,000 characters"),
        ],
    )
    submit = SubmitField("Withdraw the flag", widget=GovSubmitInput())


class ExpireForm(ConsoleForm):
    submit = SubmitField("End these flags", widget=GovSubmitInput())


class ReportForm(ConsoleForm):
    """The committee summary's date range; a GET form that changes nothing."""

    class Meta(ConsoleForm.Meta):
        csrf = False

    start = GovDateField(
        "From",
        description="The first day, for example 1 4 2026",
        invalid="The first day must be a real date, for example 1 4 2026",
        validators=[InputRequired(message="Enter the first day, for example 1 4 2026")],
    )
    end = GovDateField(
        "To",
        description="The last day, for example 31 3 2027",
        invalid="The last day must be a real date, for example 31 3 2027",
        validators=[InputRequired(message="Enter the last day, for example 31 3 2027")],
    )
    submit = SubmitField("Show the summary", widget=GovSubmitInput())

    def validate_end(self, field: Any) -> None:
        if self.start.data and field.data and field.data < self.start.data:
            raise ValidationError("The last day must be the same as or after the first day")


VARYING = ("vary", "varied")
"""The outcomes of a review or an appeal that change the flag's terms."""

VARIATION_FIELDS = {
    "level": "new_level",
    "categor": "new_categories",
    "restriction": "new_restrictions",
    "handling": "new_handling",
}
"""Words in the flag service's refusals of a variation, and the field each concerns."""


class NeededToVary:
    """A variation's field: checked only when the outcome varies the flag, then required
    when `message` is given."""

    def __init__(self, message: str | None = None) -> None:
        self.message = message

    def __call__(self, form: Any, field: Any) -> None:
        if form.outcome.data not in VARYING:
            field.errors[:] = []
            raise StopValidation()
        if self.message and not field.data:
            field.errors[:] = []
            raise StopValidation(self.message)


class VariationFields:
    """The terms a review or appeal may change, shown filled in with the flag's own."""

    new_level = RadioField(
        "Level", widget=GovRadioInput(), validators=[NeededToVary("Choose the flag's level")]
    )
    new_categories = SelectMultipleField(
        "Categories",
        description="Select all that apply",
        widget=GovCheckboxesInput(),
        validators=[NeededToVary("Select at least one category")],
    )
    new_restrictions = SelectMultipleField(
        "Contact restrictions",
        description="A restriction kept keeps its note and end date",
        widget=GovCheckboxesInput(),
        validators=[NeededToVary()],
    )
    new_handling = TextAreaField(
        "How should staff handle contact?",
        description="Shown on the banner. Leave empty to show the restrictions.",
        widget=GovTextArea(),
        validators=[Length(max=1000, message="Keep this to 1,000 characters")],
    )

    def change(self, flag: Mapping[str, Any]) -> TermsChange | None:
        """The variation asked for, against the flag's record; None unless varying."""
        if self.outcome.data not in VARYING:  # type: ignore[attr-defined]
            return None
        kept = {r["code"]: r for r in flag["restrictions"]}
        restrictions = tuple(
            Restriction(
                code,
                (kept.get(code) or {}).get("note") or "",
                date.fromisoformat(kept[code]["ends_on"])
                if code in kept and kept[code].get("ends_on")
                else None,
            )
            for code in self.new_restrictions.data or []
        )
        handling = (self.new_handling.data or "").strip()
        changed = {"level", "categories", "restrictions"}
        if handling != flag["handling"]:
            changed.add("handling")
        return TermsChange(
            level=self.new_level.data,
            categories=tuple(self.new_categories.data or ()),
            restrictions=restrictions,
            handling=handling,
            changed=frozenset(changed),
        )


def varying_form(form_class: type[ConsoleForm], settings: Settings, flag: Mapping[str, Any]) -> Any:
    """A review or appeal decision form with the variation's fields over the catalogues,
    filled in with the flag's terms until something is posted."""
    varying = type(form_class.__name__, (VariationFields, form_class), {})
    form = varying()
    catalogue = settings.catalogue
    form.new_level.choices = choices(catalogue.levels)
    form.new_categories.choices = choices(catalogue.categories)
    form.new_restrictions.choices = choices(catalogue.restrictions)
    if not form.is_submitted():
        form.new_level.data = flag["level"]
        form.new_categories.data = list(flag["categories"])
        form.new_restrictions.data = [r["code"] for r in flag["restrictions"]]
        form.new_handling.data = flag["handling"]
    return form
