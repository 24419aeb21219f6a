"""Lookup: a subject's banner, access grants, details, the status cache and privacy alerts."""
