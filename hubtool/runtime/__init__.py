"""What every measuring stage runs on: isolated worker processes, the environment fingerprint,
hubtool's own identity, caches and progress output."""
