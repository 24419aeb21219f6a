"""CRM sync: the outbox written with each status change and the worker that drains it."""
