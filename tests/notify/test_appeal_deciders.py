"""Where the council lets a deciding role take part in the case (Workington's Mayor), each
holder is told of an appeal, and the message does not say they had no part in it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.notify.conftest import lodge, received, send, told_of


@pytest.fixture
def other_settings() -> dict[str, Any]:
    return {"appeals": {"uninvolved_roles": []}}


def test_a_deciding_role_that_need_not_be_uninvolved_is_told_even_with_a_part_in_the_case(
    app, client, staff, cases, backend
) -> None:
    staff("service_director", user="u.dir.resp", name="Rory Responsible")
    flag_id = cases.notified(responsible_manager="u.dir.resp")
    lodge(client, staff, flag_id)
    assert told_of(app, "appeal_to_decide") == ["u.dir", "u.dir.resp"]
    send(app)
    bodies = [b for to, s, b in received(backend) if s == "An appeal awaits a decision"]
    assert len(bodies) == 2
    assert all("awaits a decision by a Service Director." in body for body in bodies)
    assert not any("no part in the case" in body for body in bodies)
