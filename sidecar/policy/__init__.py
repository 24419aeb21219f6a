"""The access policy: who may do what, and who took part in a case."""
