"""Stage 2, build: spec -> a Hub-ready model folder (config, seeded weights, tokenizer, provenance)."""
