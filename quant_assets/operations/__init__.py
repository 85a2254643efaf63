"""Operations: the daily timeline, alerts, backups, metrics and the production stack."""
