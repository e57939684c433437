"""The River classes PoisonLab uses, imported without their packages' eager imports.

River's subpackages import every member on import: ``river.feature_extraction``
pulls in ``river.tree`` (and with it SciPy's statistics and scikit-learn) for a
kernel approximation, ``river.drift`` its example data sets (scikit-learn again).
That is about 4 s of a 5 s start-up budget spent on code PoisonLab never runs. Here
each needed module (``river.feature_extraction.vectorize``, ...) is imported on its
own: its package is registered, unexecuted, only for the duration of the import
and then removed, so a later ``import river.feature_extraction`` still runs the
package normally and finds the same, already imported module — the classes are
River's own, identical objects either way.

>>> from river import feature_extraction
>>> feature_extraction.BagOfWords is BagOfWords
True
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType


def import_submodule(package: str, module: str) -> ModuleType:
    """``package.module`` without running ``package/__init__.py`` if it has not run yet.

    >>> import_submodule("river.naive_bayes", "multinomial").MultinomialNB.__name__
    'MultinomialNB'
    """
    name = f"{package}.{module}"
    if package in sys.modules or name in sys.modules:
        return importlib.import_module(name)
    spec = importlib.util.find_spec(package)
    if spec is None:
        raise ImportError(f"no package {package!r}")
    sys.modules[package] = importlib.util.module_from_spec(spec)   # a package object, not executed
    try:
        return importlib.import_module(name)
    finally:
        del sys.modules[package]


BagOfWords = import_submodule("river.feature_extraction", "vectorize").BagOfWords
MultinomialNB = import_submodule("river.naive_bayes", "multinomial").MultinomialNB
Pipeline = import_submodule("river.compose", "pipeline").Pipeline
ADWIN = import_submodule("river.drift", "adwin").ADWIN

__all__ = ["ADWIN", "BagOfWords", "MultinomialNB", "Pipeline", "import_submodule"]
