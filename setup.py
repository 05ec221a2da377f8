"""Only for the optional C accelerator of the PHP decoder; everything else is in pyproject.toml.

optional=True: without a compiler or Python's headers the build goes on and
exporter.pbxware.phpdecode uses its pure-Python decoder (about 7x slower; see README).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "exporter.pbxware._phpdecode",
            ["src/exporter/pbxware/_phpdecode.c"],
            optional=True,
        )
    ]
)
