"""Builds the optional C aligner (asr.score._calign); the package metadata is in pyproject.toml.

``optional=True``: without a C compiler the install still succeeds and asr.score.align falls
back to its pure-Python implementation (same results, slower).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "asr.score._calign",
            ["asr/score/_calign.c"],
            optional=True,
            extra_compile_args=["-O3"],
        )
    ]
)
