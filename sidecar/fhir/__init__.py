"""FHIR R4 resources built from what the banner shows: Flags, their code systems, AuditEvents."""
