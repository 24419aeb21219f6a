"""Tests of the flag lifecycle: rules, services, HTTP and CLI."""
