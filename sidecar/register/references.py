"""The one canonical form of a subject reference, used on every path that names a subject."""

from __future__ import annotations

import re

from sidecar.register.rules import Invalid

KINDS = ("customer", "property")
REF_MAX_LENGTH = 64
_CRM_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}")
_DIGITS = re.compile(r"[0-9]+")
UPRN_DIGITS = 12
SPACES = "\t\n\r \u00a0\u1680\u2028\u2029\u202f\u205f\u3000" + "".join(
    map(chr, range(0x2000, 0x200B))
)
"""The whitespace dropped around a reference: what `str.strip` drops but control characters."""
_SPACE = r"[\t\n\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*"
REF_PATTERN = rf"^{_SPACE}(?:0*[1-9][0-9]{{0,11}}|[A-Za-z0-9][A-Za-z0-9._:/-]{{0,63}}){_SPACE}$"
"""Either kind of reference as a JSON Schema pattern (a UPRN also must not be all zeros)."""
UPRN_PATTERN = rf"^{_SPACE}0*[1-9][0-9]{{0,11}}{_SPACE}$"
"""A UPRN as a JSON Schema pattern: up to 12 significant digits, any leading zeros."""


def normalise_ref(kind: str, ref: str) -> str:
    """The canonical reference, or Invalid naming what is wrong.

    Surrounding whitespace is dropped. A UPRN is a positive number of at most 12 digits;
    leading zeros are dropped so that "0100023336956"-style exports and "100023336956" name
    the same property, and a reference of zeros only names no property at all. A CRM
    reference keeps its case: CRMs tell "crm-1" from "CRM-1".
    """
    if kind not in KINDS:
        raise Invalid(f"unknown subject kind {kind!r}; kinds: customer, property")
    ref = (ref or "").strip(SPACES)
    if kind == "property":
        return _uprn(ref)
    if not _CRM_REF.fullmatch(ref):
        raise Invalid(
            f"customer reference {_shown(ref)} must be 1-64 letters, digits or ._:/- "
            "starting with a letter or digit"
        )
    return ref


def _uprn(ref: str) -> str:
    if not _DIGITS.fullmatch(ref):
        raise Invalid(f"UPRN {_shown(ref)} must be digits only, {UPRN_DIGITS} at most")
    significant = ref.lstrip("0")
    if not significant:
        raise Invalid(f"UPRN {_shown(ref)} is zero, which names no property")
    if len(significant) > UPRN_DIGITS:
        raise Invalid(f"UPRN {_shown(ref)} must be digits only, {UPRN_DIGITS} at most")
    return significant


def _shown(ref: str) -> str:
    """The reference as a message may quote it: bounded, with control characters escaped."""
    return repr(ref if len(ref) <= REF_MAX_LENGTH else ref[:REF_MAX_LENGTH] + "...")


def normalised_or_given(kind: str | None, ref: str | None) -> str | None:
    """The canonical reference where there is one, else the reference as given (trimmed).

    For records of what was asked (audit entries, denials): a refused reference is still
    recorded, and a valid one is always recorded in the form the register stores.
    """
    if ref is None:
        return None
    try:
        return normalise_ref(kind or "", ref)
    except Invalid:
        return ref.strip()
