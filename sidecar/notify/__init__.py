"""Notifications: telling staff when something needs them, through an outbox the worker drains."""
