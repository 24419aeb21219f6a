"""Storage: the database engine and migrations, encryption at rest and the instance's key files."""
