"""Stage 1, specs: a YAML spec -> a validated ModelSpec (and GPT2Config); family metadata; where
specs, templates and built folders live (``catalog``)."""
