"""Fixtures of the production-mode tests: the moto S3 server of the registry's S3 test."""

from tests.models.test_registry_s3 import s3  # noqa: F401  (a fixture, used by name)
