"""Demo data: a deterministic generator of realistic external events, and feeds to Kafka."""

from shared.demo.generator import DemoGenerator, DemoMix

__all__ = ["DemoGenerator", "DemoMix"]
