"""Packaging details pyproject.toml cannot express: the bundled family and card template.

model_configs/ and templates/ stay top-level in the repository (the source of truth,
what users copy); in a wheel or a non-editable install they become hubtool/_bundled/
model_configs and hubtool/_bundled/templates, which hubtool.spec.catalog finds with
importlib.resources. Everything else is declared in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup

BUNDLED = {
    "hubtool._bundled.model_configs": "model_configs",
    "hubtool._bundled.templates": "templates",
}

setup(
    packages=[*find_namespace_packages(include=["hubtool", "hubtool.*"], exclude=["*.__pycache__"]), *BUNDLED],
    package_dir=BUNDLED,
    package_data={
        "hubtool._bundled.model_configs": ["*.yaml"],
        "hubtool._bundled.templates": ["*.j2"],
    },
)
