"""The notify service: notices (通知文书) to enforcement units.

Consumes ``jiandu.notify.requested``; issues exactly one numbered, rendered notice per
idempotency key; delivers it to the unit's inbox, email, webhook and SMS gateway with bounded
retries; tracks 签收 and escalates unacknowledged notices to the supervising level.
"""
