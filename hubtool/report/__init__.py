"""The family report: latency against depth and against parameters across a family's models."""
