"""Who is calling: launch tokens, OIDC, Salesforce Canvas, sessions, access tokens, roles."""
