"""The casereview service."""
