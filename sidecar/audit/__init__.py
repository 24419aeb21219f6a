"""The audit trail: writer, tables, signed checkpoints, verification, reading, SAR exports."""
