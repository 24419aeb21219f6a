"""The Dynamics 365 form script, run in Node against a form that speaks the Client API."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "widget" / "dynamics" / "forewarn_form.js"
NODE = shutil.which("node")

# A model-driven form as the Client API presents it: attributes with getValue/getText,
# ui.setFormNotification/clearFormNotification, data.entity, and Xrm.Navigation.openUrl.
HARNESS = """
const vm = require("vm");
const fs = require("fs");
const [script, columnsJson, entityName, entityId, action] = process.argv.slice(1);
const columns = JSON.parse(columnsJson);
const notes = [];
const opened = [];
const formContext = {
  getAttribute: (name) => name in columns ? {
    getValue: () => columns[name].value,
    getText: () => columns[name].text,
  } : null,
  ui: {
    setFormNotification: (message, level, id) => { notes.push({message, level, id}); return true; },
    clearFormNotification: (id) => true,
  },
  data: {entity: {getEntityName: () => entityName, getId: () => entityId}},
};
const Xrm = {Navigation: {openUrl: (url, options) => opened.push({url, options})}};
const context = vm.createContext({Xrm, console, Date, encodeURIComponent, String, isNaN});
vm.runInContext(fs.readFileSync(script, "utf8") + "\\nthis.Forewarn = Forewarn;", context);
if (action === "open") context.Forewarn.Form.openDetails(formContext);
else context.Forewarn.Form.onLoad({getFormContext: () => formContext});
console.log(JSON.stringify({notes, opened}));
"""

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed (.ci/run installs it)")


def run(columns: dict, action: str = "load", entity: str = "contact") -> dict:
    """Each column is a plain value, or {"value", "text"} for a Choice column."""
    attributes = {
        name: value if isinstance(value, dict) else {"value": value, "text": None}
        for name, value in columns.items()
    }
    result = subprocess.run(
        [NODE, "-e", HARNESS, str(SCRIPT), json.dumps(attributes), entity, "{AB-12}", action],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return json.loads(result.stdout)


def test_red_is_an_error_notification_in_words() -> None:
    notes = run(
        {
            "fw_level": {"value": 3, "text": "Red"},
            "fw_categories": "Physical violence",
            "fw_restrictions": "Visits in pairs",
            "fw_reviewdue": "2027-05-12",
            "fw_appealpending": True,
        }
    )["notes"]
    assert notes[0]["level"] == "ERROR"
    assert notes[0]["message"] == (
        "RED WARNING FLAG: Physical violence. Restrictions: Visits in pairs. "
        "Review due 12 May 2027. Open Forewarn for handling and details."
    )
    assert notes[1] == {
        "message": "An appeal against the warning flag is pending.",
        "level": "INFO",
        "id": "forewarn-appeal",
    }


def test_the_senior_manager_handling_the_case_is_named_in_the_window_and_during_an_appeal() -> None:
    amber = {"fw_level": {"value": 2, "text": "Amber"}, "fw_categories": "Verbal/Hate abuse"}
    window = run(amber | {"fw_appealpending": False, "fw_appealhandler": "Sam Senior"})
    assert window["notes"][1] == {
        "message": "The appeal window is open: the case is handled by Sam Senior.",
        "level": "INFO",
        "id": "forewarn-appeal",
    }
    appealed = run(amber | {"fw_appealpending": True, "fw_appealhandler": "Sam Senior"})
    assert appealed["notes"][1]["message"] == (
        "An appeal against the warning flag is pending: handled by Sam Senior."
    )
    # A name left behind on a record with no flag is not shown.
    lifted = run({"fw_level": {"value": 1, "text": "None"}, "fw_appealhandler": "Sam Senior"})
    assert [n["id"] for n in lifted["notes"]] == ["forewarn-flag"]


def test_amber_warns_and_none_says_so_explicitly() -> None:
    amber = run(
        {"fw_level": {"value": 2, "text": "Amber"}, "fw_categories": "Persistent complainer"}
    )
    assert amber["notes"][0]["level"] == "WARNING"
    assert amber["notes"][0]["message"].startswith("AMBER WARNING FLAG: Persistent complainer.")
    none = run({"fw_level": {"value": 1, "text": "None"}})["notes"]
    assert none == [
        {"message": "No warning flag on this record.", "level": "INFO", "id": "forewarn-flag"}
    ]


@pytest.mark.parametrize(
    "columns",
    [{"fw_level": {"value": None, "text": None}}, {"fw_level": {"text": "Crimson"}}, {}],
    ids=["never synced", "unknown value", "columns not on the form"],
)
def test_anything_else_is_unavailable_never_no_flag(columns) -> None:
    [note] = run(columns)["notes"]
    assert note["level"] == "WARNING"
    assert note["message"].startswith("Flag status unavailable: do not assume there is no warning.")


def test_details_open_single_sign_on_in_a_new_window_for_the_record() -> None:
    [opened] = run({}, action="open")["opened"]
    assert opened["url"] == (
        "https://forewarn.council.example/auth/login?next=%2Fembed%3Fkind%3Dcustomer%26ref%3Dab-12"
    )
    assert opened["options"] == {"width": 720, "height": 860}
