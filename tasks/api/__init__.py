"""For programs: the JSON API (`/api/`), its bearer tokens, external executions' reports
and what `manage.py watch` reads. A Django app of its own (label `api`) so that its one
model, ApiToken, has migrations of its own."""
