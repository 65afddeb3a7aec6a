"""The names of the files in a model folder, defined once for every stage that reads or writes them."""

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
PROVENANCE_FILE = "provenance.json"
VERIFICATION_FILE = "verification.json"
BENCHMARK_FILE = "benchmark.json"
MEASUREMENTS_FILE = "measurements.json"
CARD_FILE = "README.md"

# What a card is rendered from: a card older than any of these is stale.
MEASUREMENT_FILES = (VERIFICATION_FILE, BENCHMARK_FILE, MEASUREMENTS_FILE, PROVENANCE_FILE)
