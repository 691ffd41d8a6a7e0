"""Root pytest configuration: doctests run across the library; Kafka and PostgreSQL fixtures
come from tests/."""

pytest_plugins = ["tests.kafka_fixtures", "tests.postgres_fixtures"]

# `python -m` entry points run on import; doctest collection must not import them
collect_ignore_glob = ["*/__main__.py"]
