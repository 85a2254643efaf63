"""Monitoring: the platform's metrics in the Prometheus text format, read from the Dagster
instance (`metrics.py`), their HTTP endpoint (`server.py`), and the Prometheus and Grafana
configuration that uses them."""
