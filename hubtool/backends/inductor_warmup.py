"""Inductor's start-up checks, done once in the fork server instead of again in every worker.

Before a process compiles or loads Inductor's CPU code, Inductor works out which vector
instruction sets this machine can build and load: a g++ dry build per instruction set (kept
in the compile cache) and then, every time, a fresh Python process per set that loads the
result. It also hashes torch's and Triton's sources for its cache keys. Together about 1.7 s
per process on 2 cores, cache warm or not. Inductor keeps all three answers for the life of
the process (``functools.cache``), so computing them in the server that torch workers are
forked from (``hubtool.verify.run.COMPILE_PRELOAD``) hands every forked worker the answers.
They depend on the machine and the installed packages, never on a model or a run.

It also keeps Inductor's precompiled headers (about 150 MB per environment) in hubtool's
compile cache, where ``make clean`` finds them: Inductor puts them in the temporary folder it
sees when ``torch._inductor.codecache`` is first imported, which for forked workers is this
server's. So this module runs before Inductor is imported (first in ``COMPILE_PRELOAD``)
and gives the server the temporary folder and Inductor cache the workers get
(``isolate.child_env``).

Importing this module is the warm-up: a fork server can only import. A failure here costs
nothing but time (each worker then works the answers out itself), so it is swallowed.
"""

from __future__ import annotations

import os


def warm() -> None:
    """Compute Inductor's per-process answers now; the dry builds go to hubtool's compile cache."""
    import tempfile

    from hubtool.runtime.cache import compile_cache
    from hubtool.runtime.isolate import child_env

    # The folders the workers get, so make clean removes what lands there.
    workers = child_env(cache_dir=compile_cache(), threads=None)
    tempfile.tempdir = workers["TMPDIR"]
    previous = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = workers["TORCHINDUCTOR_CACHE_DIR"]
    try:
        from torch._inductor import codecache, cpu_vec_isa

        cpu_vec_isa.valid_vec_isa_list()
        codecache.torch_key()
        codecache.triton_key()
    finally:
        if previous is None:
            os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
        else:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = previous


try:
    warm()
except Exception:  # noqa: BLE001, S110 - an optimisation only: the workers compute the same themselves
    pass
