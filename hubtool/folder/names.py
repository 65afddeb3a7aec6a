"""The names of the files in a model folder, defined once for every stage that reads or writes them.

A folder holds two kinds of file. *Model files* decide what the model computes: the weights,
the config, the generation config and the tokenizer. Evidence (verification, benchmarks,
training records, card measurements) is bound to the sha256 of exactly these files, so a
changed byte in any of them makes every earlier measurement stale. *Record files* (README.md,
provenance.json and the reports themselves) describe the model and are not part of that
identity.
"""

WEIGHTS_FILE = "model.safetensors"
WEIGHT_SUFFIX = ".safetensors"
CONFIG_FILE = "config.json"
GENERATION_CONFIG_FILE = "generation_config.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt")
OPTIONAL_TOKENIZER_FILES = ("special_tokens_map.json", "added_tokens.json")

PROVENANCE_FILE = "provenance.json"
VERIFICATION_FILE = "verification.json"
BENCHMARK_DIR = "benchmarks"  # one JSON per machine: benchmarks/<machine id>.json
MEASUREMENTS_FILE = "measurements.json"
CARD_FILE = "README.md"
LOSS_JSON = "train_loss.json"
LOSS_PNG = "train_loss.png"

# Files other than weights whose bytes change what the model computes or how it tokenizes.
MODEL_FILES = (CONFIG_FILE, GENERATION_CONFIG_FILE, *TOKENIZER_FILES, *OPTIONAL_TOKENIZER_FILES)


def is_model_file(name: str) -> bool:
    """True for a top-level file whose bytes are part of the model's identity."""
    return name in MODEL_FILES or (name.endswith(WEIGHT_SUFFIX) and "/" not in name)

