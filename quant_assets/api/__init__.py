"""The platform's HTTP API: FastAPI with API keys and OAuth2 tokens, rate limits, an audit log
and the portfolio manager's dashboard. `quant_assets.api.app.create_app` builds it;
`python -m quant_assets.api` serves it."""
