"""The register's services: storage plus the lifecycle's rules, one module per concern."""
