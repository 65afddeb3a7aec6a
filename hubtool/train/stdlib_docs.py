"""Docstrings of a fixed list of standard-library modules, as JSON on stdout.

Run as a script in an isolated interpreter (``python -I -S stdlib_docs.py``): libraries
loaded in the calling process (transformers, torch) patch stdlib objects and would change
the text. Standard library imports only.
"""

import importlib
import inspect
import json
import sys
import warnings

# A fixed, sorted list: the text depends only on the Python installation.
MODULES = (
    "abc", "argparse", "ast", "asyncio", "base64", "bisect", "calendar", "collections",
    "concurrent.futures", "configparser", "contextlib", "copy", "csv", "dataclasses",
    "datetime", "decimal", "difflib", "email", "enum", "fractions", "functools", "glob",
    "gzip", "hashlib", "heapq", "html", "http.client", "inspect", "io", "ipaddress",
    "itertools", "json", "logging", "mailbox", "math", "operator", "os", "pathlib", "pickle",
    "pprint", "queue", "random", "re", "shlex", "shutil", "socket", "sqlite3", "statistics",
    "string", "subprocess", "tarfile", "tempfile", "textwrap", "threading", "time",
    "tokenize", "unittest", "urllib.parse", "uuid", "warnings", "weakref", "zipfile",
)


def collect(modules=MODULES):
    """Module docstrings, then those of each module's own classes, functions and methods."""
    docs = []

    def add(obj):
        doc = getattr(obj, "__doc__", None)
        if isinstance(doc, str) and doc.strip():
            docs.append(inspect.cleandoc(doc))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in modules:
            module = importlib.import_module(name)
            add(module)
            for attr in sorted(vars(module)):
                obj = vars(module)[attr]
                if (inspect.isclass(obj) or inspect.isroutine(obj)) and getattr(obj, "__module__", None) == name:
                    add(obj)
                    if inspect.isclass(obj):
                        for member in sorted(vars(obj)):
                            if inspect.isfunction(vars(obj)[member]):
                                add(vars(obj)[member])
    return docs


if __name__ == "__main__":
    json.dump(collect(), sys.stdout)
