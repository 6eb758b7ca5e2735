"""The REST API (/api/): the same services as the web forms, scoped the same way."""
