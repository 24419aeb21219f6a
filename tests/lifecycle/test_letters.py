"""Letters fit to post: UK dates, a reference a person can read out, sentences apart."""

from __future__ import annotations

import re
from datetime import date, timedelta
from html import unescape

from sidecar.register.notices import long_date
from sidecar.register.rules import add_months

REFERENCE = re.compile(r"Our reference: (FW-\d{4}-\d{4})")
# A full stop, comma or colon with a capital straight after it: two sentences run together.
RUN_TOGETHER = re.compile(r"[a-z][.,;:!?][A-Z]")


def _text(response) -> str:
    html = re.sub(r"<style.*?</style>", " ", response.get_data(as_text=True), flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _letter(client, staff, flag_id: str, n: int) -> str:
    response = client.get(f"/api/v1/flags/{flag_id}/letters/{n}", headers=staff.csm)
    assert response.status_code == 200
    return _text(response)


def test_flags_are_numbered_within_the_year_in_the_order_proposed(cases) -> None:
    year = date.today().year
    first, second = cases.propose(), cases.propose()
    assert cases.read(first)["reference"] == f"FW-{year}-0001"
    assert cases.read(second)["reference"] == f"FW-{year}-0002"


def test_the_decision_letter_reads_as_a_letter_to_post(cases, client, staff) -> None:
    cases.propose()
    flag_id = cases.notified(
        restrictions=[{"code": "time_limited_calls", "note": "10 minutes", "ends_on": "2031-05-01"}]
    )
    letter = _letter(client, staff, flag_id, 1)
    today = date.today()
    assert REFERENCE.search(letter).group(1) == f"FW-{today.year}-0002"
    assert f"Date: {today.day} {today:%B %Y}" in letter
    assert f"by {long_date(today + timedelta(days=21))}" in letter
    assert f"review this decision by {long_date(add_months(today, 12))}" in letter
    assert "(until 1 May 2031)" in letter
    assert not re.search(r"\d{4}-\d{2}-\d{2}", letter), "an ISO date in the letter"
    assert RUN_TOGETHER.findall(letter) == []


def test_outcome_letters_keep_their_sentences_apart(cases, client, staff) -> None:
    flag_id = cases.notified()
    cases.assign_review(flag_id, "u.sm")
    review = {"outcome": "continue", "notes": "Two more incidents since."}
    assert (
        client.post(f"/api/v1/flags/{flag_id}/reviews", json=review, headers=staff.sm).status_code
        == 201
    )
    appeal = client.post(f"/api/v1/flags/{flag_id}/appeals", json={}, headers=staff.officer)
    fresh = staff("service_director", user="u.dir2", name="Dora Fresh")
    decision = {"outcome": "upheld", "reasons": "The panel's assessment stands."}
    url = f"/api/v1/flags/{flag_id}/appeals/{appeal.get_json()['id']}/decision"
    assert client.post(url, json=decision, headers=fresh).status_code == 200
    for n in (2, 3):
        letter = _letter(client, staff, flag_id, n)
        assert REFERENCE.search(letter)
        assert RUN_TOGETHER.findall(letter) == [], n
        assert not re.search(r"\d{4}-\d{2}-\d{2}", letter), n


def test_long_dates_have_no_leading_zero() -> None:
    assert long_date(date(2026, 12, 3)) == "3 December 2026"
    assert long_date("2026-12-23") == "23 December 2026"
    assert long_date(None) == ""
