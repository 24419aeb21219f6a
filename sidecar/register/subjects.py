"""Subjects (customers by CRM reference, properties by UPRN) and the links between them."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from sidecar.audit import writer as audit
from sidecar.register.context import ServiceContext
from sidecar.register.history import audit_actor
from sidecar.register.models import Subject, SubjectLink
from sidecar.register.references import normalise_ref
from sidecar.register.rules import Conflict, NotFound
from sidecar.register.status import status_changed


def find(session: Session, kind: str, ref: str) -> Subject | None:
    ref = normalise_ref(kind, ref)
    return session.scalars(select(Subject).where(Subject.kind == kind, Subject.ref == ref)).first()


def get_or_create(session: Session, kind: str, ref: str) -> Subject:
    """The subject, created on first use (references come from the CRM)."""
    ref = normalise_ref(kind, ref)
    subject = find(session, kind, ref)
    if subject is None:
        subject = Subject(kind=kind, ref=ref, status_version=0)
        session.add(subject)
        session.flush()
    return subject


def require(session: Session, kind: str, ref: str) -> Subject:
    subject = find(session, kind, ref)
    if subject is None:
        raise NotFound(f"no {kind} {normalise_ref(kind, ref)} in the register")
    return subject


def linked_properties(session: Session, customer: Subject) -> list[Subject]:
    return list(
        session.scalars(
            select(Subject)
            .join(SubjectLink, SubjectLink.property_id == Subject.id)
            .where(SubjectLink.customer_id == customer.id)
            .order_by(Subject.ref)
        )
    )


def link(ctx: ServiceContext, customer_ref: str, uprn: str) -> Subject:
    """Link a customer to a property; the property's banner then shows the customer's flags."""
    session = ctx.session
    customer = get_or_create(session, "customer", customer_ref)
    prop = get_or_create(session, "property", uprn)
    if session.get(SubjectLink, (customer.id, prop.id)) is not None:
        raise Conflict(f"customer {customer.ref} is already linked to property {prop.ref}")
    session.add(SubjectLink(customer_id=customer.id, property_id=prop.id))
    _audit_link(ctx, "subject.link", customer, prop)
    status_changed(session, prop)
    return prop


def unlink(ctx: ServiceContext, customer_ref: str, uprn: str) -> Subject:
    """Remove a customer's link to a property; that property's banner stops showing them."""
    session = ctx.session
    customer = require(session, "customer", customer_ref)
    prop = require(session, "property", uprn)
    removed = session.execute(
        delete(SubjectLink).where(
            SubjectLink.customer_id == customer.id, SubjectLink.property_id == prop.id
        )
    )
    if not removed.rowcount:
        raise NotFound(f"customer {customer.ref} is not linked to property {prop.ref}")
    _audit_link(ctx, "subject.unlink", customer, prop)
    status_changed(session, prop)
    return prop


def _audit_link(ctx: ServiceContext, action: str, customer: Subject, prop: Subject) -> None:
    audit.append(
        ctx.session,
        audit.AuditEvent(
            action=action,
            subject_kind="customer",
            subject_ref=customer.ref,
            outcome_reason=f"property {prop.ref}",
            **audit_actor(ctx.actor),
        ),
    )
