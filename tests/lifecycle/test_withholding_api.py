"""Withholding the decision letter: the Head of Legal's guidance, then a director's own word."""

from __future__ import annotations


def test_the_letter_is_withheld_only_once_a_director_permits_it_in_person(
    cases, client, staff
) -> None:
    flag_id = cases.active()
    legal = staff("legal", user="u.legal", name="Lee Legal")
    url = f"/api/v1/flags/{flag_id}/notice"
    no_guidance = client.post(url + "/permission", headers=staff.director)
    assert no_guidance.status_code == 409
    missing = client.post(url + "/guidance", json={"legal_guidance_ref": "LG-7"}, headers=legal)
    assert missing.status_code == 422
    guidance = {"legal_guidance_ref": "LG-7", "reason": "The officer would be at risk."}
    recorded = client.post(url + "/guidance", json=guidance, headers=legal)
    assert recorded.status_code == 201
    assert cases.read(flag_id)["notice"] is None
    # Guidance is the Head of Legal's; permission is a Service Director's.
    assert client.post(url + "/guidance", json=guidance, headers=staff.csm).status_code == 403
    assert client.post(url + "/permission", headers=legal).status_code == 403
    permitted = client.post(url + "/permission", headers=staff.director)
    assert permitted.status_code == 201
    assert permitted.get_json()["director_permission_by"] == "u.dir"
    record = cases.read(flag_id)
    assert record["notice"]["method"] == "withheld"
    assert record["notice"]["legal_guidance_ref"] == "LG-7"
    assert record["letters"] == []
    actions = [event["action"] for event in record["history"]]
    assert actions[-2:] == ["withholding_advised", "notice_withheld"]
    assert client.post(url + "/permission", headers=staff.director).status_code == 409


def test_a_director_refuses_permission_and_the_letter_must_be_sent(cases, client, staff) -> None:
    flag_id = cases.active()
    legal = staff("legal", user="u.legal", name="Lee Legal")
    url = f"/api/v1/flags/{flag_id}/notice"
    refusal = {"reason": "The visits in pairs manage the risk; he should be told."}
    assert client.post(url + "/refusal", json=refusal, headers=staff.director).status_code == 409
    guidance = {"legal_guidance_ref": "LG-8", "reason": "The officer would be at risk."}
    assert client.post(url + "/guidance", json=guidance, headers=legal).status_code == 201
    blank = client.post(url + "/refusal", json={"reason": "  "}, headers=staff.director)
    assert blank.status_code == 422
    assert "reason" in blank.get_json()["detail"]
    assert client.post(url + "/refusal", json=refusal, headers=legal).status_code == 403
    refused = client.post(url + "/refusal", json=refusal, headers=staff.director)
    assert refused.status_code == 201
    assert refused.get_json()["refused_by"] == "u.dir"
    record = cases.read(flag_id)
    assert record["notice"] is None
    assert record["history"][-1]["action"] == "withholding_refused"
    assert refusal["reason"] in record["history"][-1]["why"]
    # Refused once, neither permission nor a second refusal is given on the same guidance.
    assert client.post(url + "/permission", headers=staff.director).status_code == 409
    assert client.post(url + "/refusal", json=refusal, headers=staff.director).status_code == 409
