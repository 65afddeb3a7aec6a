"""The staging hub: the part of the Hugging Face Hub's HTTP API that huggingface_hub and the
``hf`` CLI use for model repos, served by Starlette on uvicorn over hubtool.hub.store.

Modules, by concern: ``runner`` (StagingHub: lock, bind, uvicorn), ``lock`` (one server per
root), ``access`` (token file, users, namespaces), ``web`` (shared plumbing: bodies under a
cap, error answers, URL parts), ``app`` (the ASGI app, whoami, access log), and the routes:
``repos``, ``files`` (tree, downloads), ``commits``, ``lfs``, ``refs`` (branches, tags,
pull requests). Importing this package loads Starlette and uvicorn: only ``hubtool hub
serve`` and code that runs a hub should.
"""

from hubtool.hub.server.access import Access, User, load_access
from hubtool.hub.server.runner import StagingHub, default_root, is_loopback
from hubtool.hub.server.web import Limits

__all__ = ["Access", "Limits", "StagingHub", "User", "default_root", "is_loopback", "load_access"]
