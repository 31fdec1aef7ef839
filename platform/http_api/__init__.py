"""The HTTP API: the jobs API (/api/v1/), API keys, report endpoints, provider webhooks."""
