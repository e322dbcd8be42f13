"""The penalty service."""
