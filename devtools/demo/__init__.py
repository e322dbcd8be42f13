"""Demo data: a deterministic generator of realistic external events, and feeds to Kafka."""

from devtools.demo.generator import DemoGenerator, DemoMix

__all__ = ["DemoGenerator", "DemoMix"]
