"""Jiandu common package: what every service truly shares.

Event envelope, topic registry, settings, telemetry, MongoDB and Kafka plumbing
(idempotent inbox, transactional outbox, retries and dead letters, durable timers).
"""
