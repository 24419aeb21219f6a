"""The forms that take a flag through the policy: its proposal and the panel's decisions."""

from __future__ import annotations

from collections.abc import Iterable
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
    IntegerField,
    RadioField,
    SelectChoice,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
    ValidationError,
)
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from sidecar.console.forms import ConsoleForm, GovDateField, choices, options
from sidecar.register.rules import PROTECTED_LABELS, Restriction
from sidecar.settings import Settings


def in_future(_form: Any, field: Any) -> None:
    if isinstance(field.data, date) and field.data <= date.today():
        raise ValidationError("The end date must be in the future")


def adjustment_lines(text: str | None) -> tuple[str, ...]:
    """The adjustments typed one per line, without blank lines."""
    return tuple(line.strip() for line in (text or "").splitlines() if line.strip())


def _adjustment_lines(_form: Any, field: Any) -> None:
    lines = adjustment_lines(field.data)
    if len(lines) > 10:
        raise ValidationError("Give 10 adjustments at most")
    if any(len(line) > 200 for line in lines):
        raise ValidationError("Keep each adjustment to 200 characters")


class ProposalBase(ConsoleForm):
    """The fields every proposal has; each restriction's note and end date are added per
    catalogue entry by `proposal_form`."""

    level = RadioField(
        "Level",
        widget=GovRadioInput(),
        validators=[InputRequired(message="Choose the flag's level")],
    )
    categories = SelectMultipleField(
        "Categories",
        description="Select all that apply",
        widget=GovCheckboxesInput(),
        validators=[InputRequired(message="Select at least one category")],
    )
    restrictions = SelectMultipleField(
        "Contact restrictions",
        description="Select any that apply; each may have a note and its own end date",
        widget=GovCheckboxesInput(),
        validators=[Optional()],
    )
    handling = TextAreaField(
        "How should staff handle contact?",
        description="Shown on the banner to every member of staff. Leave empty to show the "
        "restrictions.",
        widget=GovTextArea(),
        validators=[Length(max=1000, message="Keep this to 1,000 characters")],
    )
    reason = TextAreaField(
        "Why is a flag needed?",
        description="Confidential: only staff with a business need will read it.",
        widget=GovTextArea(),
        validators=[InputRequired(message="Say why a flag is needed"), Length(max=20000)],
    )
    control_measures = TextAreaField(
        "Control measures",
        description="What staff must do to stay safe. Confidential.",
        widget=GovTextArea(),
        validators=[InputRequired(message="Describe the control measures"), Length(max=20000)],
    )
    adjustments = TextAreaField(
        "Adjustments staff must make",
        description="One per line, written as an instruction, for example 'Contact by letter "
        "in large print'. Shown on the banner to every member of staff and sent to the CRM, so "
        "leave out the health or disability detail behind it.",
        widget=GovTextArea(),
        validators=[Optional(), _adjustment_lines],
    )
    reasonable_adjustments = TextAreaField(
        "Why the adjustments are needed",
        description="Confidential: the health or disability detail behind the adjustments.",
        widget=GovTextArea(),
        validators=[Length(max=20000)],
    )
    responsible_manager = StringField(
        "Responsible service manager",
        description="Their user id, as they sign in, for example demo.sm",
        widget=GovTextInput(),
        validators=[
            InputRequired(message="Enter the responsible manager's user id"),
            Length(max=128, message="A user id is 128 characters at most"),
        ],
    )
    review_months = IntegerField(
        "Review period in months",
        widget=GovTextInput(),
        validators=[
            InputRequired(message="Enter the review period in months, for example 12"),
            NumberRange(min=1, max=36, message="The review period must be 1 to 36 months"),
        ],
    )
    warning_given_on = GovDateField(
        "When was the person warned?",
        description="The date they were told their behaviour was unacceptable, for example "
        "27 3 2026. Leave empty if no warning was given.",
        invalid="The date of the warning must be a real date",
        validators=[Optional()],
    )
    no_warning_reason = TextAreaField(
        "If no warning was given, why not?",
        description="For example, a physical threat was made. Confidential.",
        widget=GovTextArea(),
        validators=[Length(max=2000, message="Keep this to 2,000 characters")],
    )
    protects = SelectMultipleField(
        "Who does the flag protect?",
        description="Select all that apply",
        choices=options(PROTECTED_LABELS.items()),
        default=["staff"],
        widget=GovCheckboxesInput(),
        validators=[InputRequired(message="Select who the flag protects")],
    )
    protected_people = TextAreaField(
        "Which councillors or contractors, by name?",
        description="Confidential: only staff with a business need will read the names. Leave "
        "empty for staff, who are known by their sign-in.",
        widget=GovTextArea(),
        validators=[Length(max=2000, message="Keep the names to 2,000 characters")],
    )
    incident_ids = SelectMultipleField(
        "Incidents this proposal relies on",
        widget=GovCheckboxesInput(),
        validators=[Optional()],
    )
    submit = SubmitField("Propose the flag", widget=GovSubmitInput())

    def restriction_terms(self) -> tuple[Restriction, ...]:
        return tuple(
            Restriction(
                code,
                (self[f"note_{code}"].data or "").strip(),
                self[f"ends_{code}"].data,
            )
            for code in self.restrictions.data or []
        )


def proposal_form(
    settings: Settings, incidents: Iterable[tuple[str, str]], **kwargs: Any
) -> ProposalBase:
    """A proposal form over config/forewarn.toml's catalogues and the subject's incidents."""
    catalogue = settings.catalogue
    fields: dict[str, Any] = {}
    for code, label in catalogue.restrictions.items():
        fields[f"note_{code}"] = StringField(
            f"Note on {label.lower()}",
            description="For example, 10 minutes",
            widget=GovTextInput(),
            validators=[Length(max=200, message="Keep the note to 200 characters")],
        )
        fields[f"ends_{code}"] = GovDateField(
            f"When does {label.lower()} end?",
            description="Leave empty for as long as the flag lasts",
            invalid=f"The end of {label.lower()} must be a real date",
            validators=[Optional(), in_future],
        )
    form_class = type("ProposalForm", (ProposalBase,), fields)
    form = form_class(**kwargs)
    form.level.choices = choices(catalogue.levels)
    form.categories.choices = choices(catalogue.categories)
    form.restrictions.choices = choices(catalogue.restrictions)
    form.incident_ids.choices = options(incidents)
    if form.review_months.data is None and not form.is_submitted():
        form.review_months.data = settings.policy.review_period_months
    return form


class PanelForm(ConsoleForm):
    role = RadioField(
        "Which panel role are you deciding in?",
        widget=GovRadioInput(),
        validators=[InputRequired(message="Choose the panel role you are deciding in")],
    )
    decision = RadioField(
        "Your decision",
        choices=options([("approve", "Approve the flag"), ("reject", "Reject the proposal")]),
        widget=GovRadioInput(),
        validators=[InputRequired(message="Choose to approve or reject")],
    )
    severity = StringField(
        "Severity",
        description="How serious the behaviour is",
        widget=GovTextInput(),
        validators=[InputRequired(message="Record the severity"), Length(max=2000)],
    )
    frequency = StringField(
        "Frequency",
        description="How often it has happened",
        widget=GovTextInput(),
        validators=[InputRequired(message="Record the frequency"), Length(max=2000)],
    )
    proportionality = TextAreaField(
        "Proportionality",
        description="Why this is the least restriction that keeps staff safe. Confidential.",
        widget=GovTextArea(),
        validators=[InputRequired(message="Record why it is proportionate"), Length(max=20000)],
    )
    reasonable_adjustments = TextAreaField(
        "Reasonable adjustments considered",
        description="Confidential.",
        widget=GovTextArea(),
        validators=[
            InputRequired(message="Record the reasonable adjustments considered"),
            Length(max=20000),
        ],
    )
    submit = SubmitField("Record my decision", widget=GovSubmitInput())


def panel_form(settings: Settings, roles: Iterable[str], *, submitted: bool) -> PanelForm:
    """The panel form offering the caller's panel roles.

    A submitted form accepts any panel role, so that deciding in a role the caller does not
    hold is refused by the policy's own rule (403, audited) as the API refuses it.
    """
    held = set(roles)
    access, panel = settings.access, settings.panel
    form = PanelForm()
    form.role.choices = [
        SelectChoice(role, access.role_name(role))
        for role in panel.roles
        if submitted or role in held
    ]
    return form
