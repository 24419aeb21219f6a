"""The console's forms: WTForms fields drawn with GOV.UK Frontend widgets, CSRF on each."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from typing import Any

from flask import current_app, request
from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import (
    GovCharacterCount,
    GovCheckboxesInput,
    GovDateInput,
    GovRadioInput,
    GovSubmitInput,
    GovTextArea,
    GovTextInput,
)
from werkzeug.utils import cached_property
from wtforms import (
    DateField,
    RadioField,
    SelectChoice,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
    ValidationError,
)
from wtforms.validators import InputRequired, Length

from sidecar.api.endpoint import has_control_characters
from sidecar.register import subjects
from sidecar.register.rules import PEOPLE_KINDS, Refusal


def options(pairs: Iterable[tuple[str, str]]) -> list[SelectChoice]:
    """Radio or checkbox options from (value, label) pairs."""
    return [SelectChoice(value, label) for value, label in pairs]


YES_NO = options([("yes", "Yes"), ("no", "No")])
KINDS = options([("customer", "A customer (CRM reference)"), ("property", "A property (UPRN)")])


class ConsoleForm(FlaskForm):
    """A form whose CSRF token is checked whenever the session cookie signs the request in,
    and whose text boxes refuse control characters."""

    class Meta(FlaskForm.Meta):
        @cached_property
        def csrf(self) -> bool:
            # A request signed in by an Authorization header cannot be forged by another
            # site, so it carries no form token (as the API's own CSRF check reasons).
            enabled = current_app.config.get("WTF_CSRF_ENABLED", True)
            return bool(enabled) and "Authorization" not in request.headers

    def validate(self, extra_validators: Mapping[str, Any] | None = None) -> bool:
        """Validate, refusing control characters in every text box as the API does.

        A box holding one gets that error alone: what else is wrong with it (a reference's
        form, say) would only hide the characters nobody can see.
        """
        valid = super().validate(extra_validators=extra_validators)
        for name, field in self._fields.items():
            if (
                isinstance(field, StringField)
                and name != self.meta.csrf_field_name
                and isinstance(field.data, str)
                and has_control_characters(field.data)
            ):
                field.errors = [f"Remove the hidden control characters from '{field.label.text}'"]
                valid = False
        return valid


def choices(catalogue: Mapping[str, str]) -> list[SelectChoice]:
    """A catalogue from config/forewarn.toml as options: its codes, shown by their labels."""
    return options(catalogue.items())


def yes(value: str | None) -> bool:
    return value == "yes"


class GovDateField(DateField):
    """A date in three boxes (day, month, year), with the Design System's error messages."""

    def __init__(self, *args: Any, invalid: str = "Enter a real date", **kwargs: Any) -> None:
        kwargs.setdefault("format", "%d %m %Y")
        kwargs.setdefault("widget", GovDateInput())
        super().__init__(*args, **kwargs)
        self.invalid = invalid

    def process_formdata(self, valuelist: list[str]) -> None:
        values = [v.strip() for v in valuelist]
        # The widget redraws three boxes from raw_data, whatever arrived (a crafted post
        # may send none, or more than three).
        self.raw_data = [*values, "", "", ""][:3]
        self.data = None
        if not any(values):
            return
        if len(values) != 3:
            raise ValueError(self.invalid)
        try:
            super().process_formdata(values)
        except ValueError:
            self.data = None
            raise ValueError(self.invalid) from None


class ReferenceCheck:
    """A subject reference the register accepts for the kind chosen in `kind_field`."""

    def __init__(self, kind_field: str = "kind") -> None:
        self.kind_field = kind_field

    def __call__(self, form: FlaskForm, field: Any) -> None:
        kind = getattr(form, self.kind_field).data
        if kind not in ("customer", "property") or not field.data:
            return
        try:
            field.data = subjects.normalise_ref(kind, field.data)
        except Refusal as exc:
            raise ValidationError(_reference_message(kind)) from exc


def _reference_message(kind: str) -> str:
    if kind == "property":
        return "Enter the UPRN as digits only, 12 at most, for example 100023336956"
    return (
        "Enter the CRM reference as letters, digits and . _ : / - only, "
        "starting with a letter or digit, for example CRM-1001"
    )


def not_in_future(form: FlaskForm, field: Any) -> None:
    if isinstance(field.data, date) and field.data > date.today():
        raise ValidationError("The date must be today or in the past")


class SignOutForm(ConsoleForm):
    submit = SubmitField("Sign out")


class PersonaForm(ConsoleForm):
    persona = RadioField(
        "Who do you want to be?",
        widget=GovRadioInput(),
        validators=[InputRequired(message="Choose who to sign in as")],
    )
    submit = SubmitField("Sign in", widget=GovSubmitInput())


def kind_field(label: str, **kwargs: Any) -> RadioField:
    """Which kind of subject: a customer or a property."""
    return RadioField(
        label,
        choices=KINDS,
        widget=GovRadioInput(),
        validators=[InputRequired(message="Choose a customer or a property")],
        **kwargs,
    )


def reference_field(missing: str = "Enter a reference") -> StringField:
    """A subject's reference, checked against the kind chosen in the form's `kind` field."""
    return StringField(
        "Reference",
        description="The customer's CRM reference or the property's UPRN",
        widget=GovTextInput(),
        validators=[
            InputRequired(message=missing),
            Length(max=64, message="A reference is 64 characters at most"),
            ReferenceCheck(),
        ],
    )


def user_id_field(label: str, missing: str, **kwargs: Any) -> StringField:
    """A member of staff's user id, as they sign in."""
    return StringField(
        label,
        widget=GovTextInput(),
        **kwargs,
        validators=[
            InputRequired(message=missing),
            Length(max=128, message="A user id is 128 characters at most"),
        ],
    )


class SubjectSearchForm(ConsoleForm):
    """Find a subject by its reference; a GET form that changes nothing."""

    class Meta(ConsoleForm.Meta):
        csrf = False

    kind = kind_field("What are you looking for?", default="customer")
    ref = reference_field()
    submit = SubmitField("Search", widget=GovSubmitInput())


class IncidentForm(ConsoleForm):
    kind = kind_field("Who or where was it?")
    ref = reference_field("Enter the customer's reference or the property's UPRN")
    occurred_on = GovDateField(
        "When did it happen?",
        description="For example, 27 3 2026",
        invalid="The date it happened must be a real date, for example 27 3 2026",
        validators=[
            InputRequired(message="Enter the date it happened, for example 27 3 2026"),
            not_in_future,
        ],
    )
    occurred_time = StringField(
        "What time did it happen?",
        description="In 24-hour time, for example 14:30",
        widget=GovTextInput(),
        validators=[InputRequired(message="Enter the time it happened, for example 14:30")],
    )
    channel = RadioField(
        "How did it happen?",
        widget=GovRadioInput(),
        validators=[InputRequired(message="Choose how it happened")],
    )
    behaviour_types = SelectMultipleField(
        "What behaviour was shown?",
        description="Select all that apply",
        widget=GovCheckboxesInput(),
        validators=[InputRequired(message="Select at least one kind of behaviour")],
    )
    narrative = TextAreaField(
        "What happened?",
        description="Say what was said and done, by whom, and who saw it. Only staff with a "
        "business need will read this.",
        widget=GovCharacterCount(),
        validators=[
            InputRequired(message="Describe what happened"),
            Length(max=20000, message="Keep the description to 20,000 characters"),
        ],
    )
    warning_given = RadioField(
        "Was the person warned about their behaviour?",
        choices=YES_NO,
        widget=GovRadioInput(),
        validators=[InputRequired(message="Say whether the person was warned")],
    )
    reporter_kind = RadioField(
        "Who did it happen to?",
        description="Staff: you, or the member of staff you record it for. A councillor or a "
        "contractor is named below.",
        choices=options(PEOPLE_KINDS.items()),
        default="staff",
        widget=GovRadioInput(),
        validators=[InputRequired(message="Say who it happened to")],
    )
    reporter_name = StringField(
        "The councillor's or contractor's name",
        description="Confidential: only staff with a business need will read it. Leave empty "
        "for staff, who are known by their sign-in.",
        widget=GovTextInput(),
        validators=[Length(max=256, message="Keep the name to 256 characters")],
    )
    submit = SubmitField("Record the incident", widget=GovSubmitInput())

    def validate_occurred_time(self, field: Any) -> None:
        try:
            time.fromisoformat(field.data.strip())
        except ValueError:
            raise ValidationError("Enter the time in 24-hour time, for example 14:30") from None

    def occurred_at(self, zone: Any) -> datetime:
        """The moment given, in the council's time zone."""
        moment = time.fromisoformat(self.occurred_time.data.strip())
        return datetime.combine(self.occurred_on.data, moment, tzinfo=zone)


class TriageForm(ConsoleForm):
    outcome = RadioField(
        "What is your decision?",
        choices=options(
            [
                ("no_further_action", "No further action"),
                ("monitor", "Monitor"),
                ("refer_to_case_review", "Refer to the case review panel"),
                ("refer_to_police", "Report to the police"),
                ("legal_action", "Take legal action"),
            ]
        ),
        widget=GovRadioInput(),
        validators=[InputRequired(message="Choose your decision")],
    )
    police_reference = StringField(
        "Police crime reference",
        description="If you report it to the police",
        widget=GovTextInput(),
        validators=[Length(max=128, message="A reference is 128 characters at most")],
    )
    legal_reference = StringField(
        "Legal case reference",
        description="If the council takes legal action",
        widget=GovTextInput(),
        validators=[Length(max=128, message="A reference is 128 characters at most")],
    )
    channel = StringField(
        "How did the behaviour present across channels?",
        widget=GovTextInput(),
        validators=[InputRequired(message="Say how the behaviour presented"), Length(max=2000)],
    )
    circumstances = TextAreaField(
        "What were the circumstances leading to it?",
        widget=GovTextArea(),
        validators=[InputRequired(message="Describe the circumstances"), Length(max=20000)],
    )
    known_to_council = RadioField(
        "Is the customer known to the council?",
        choices=YES_NO,
        widget=GovRadioInput(),
        validators=[InputRequired(message="Say whether the customer is known to the council")],
    )
    support_needs = StringField(
        "Known disability or other need for support",
        description="Write 'none known' if there is none",
        widget=GovTextInput(),
        validators=[
            InputRequired(message="Say what support needs are known, or 'none known'"),
            Length(max=2000),
        ],
    )
    submit = SubmitField("Record the decision", widget=GovSubmitInput())

    def reference(self) -> str:
        """The reference typed under the chosen outcome (others' boxes are ignored)."""
        field = {"refer_to_police": self.police_reference, "legal_action": self.legal_reference}
        chosen = field.get(self.outcome.data)
        return (chosen.data or "").strip() if chosen is not None else ""

    def considerations(self) -> dict[str, Any]:
        return {
            "channel": self.channel.data.strip(),
            "circumstances": self.circumstances.data.strip(),
            "known_to_council": yes(self.known_to_council.data),
            "support_needs": self.support_needs.data.strip(),
        }
