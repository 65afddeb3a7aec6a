"""Push and pull through huggingface_hub, and a Hub-compatible staging server."""
