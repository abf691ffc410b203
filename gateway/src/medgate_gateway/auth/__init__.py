"""Who may do what: users, roles, bearer tokens, API keys and the audit trail."""
