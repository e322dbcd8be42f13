"""Inspection service: supervision of enterprise inspections (涉企行政检查) and officers."""
