"""Modules that are also the package-level function of their name (``scalelaw.fit``,
``scalelaw.laws``): ``import scalelaw as sl; sl.fit(data, "chinchilla")`` calls
:func:`scalelaw.api.fit`, while ``scalelaw.fit`` stays the engine module for code that imports
it (``import scalelaw.fit as engine``; ``from scalelaw.fit import fit``)."""
import sys
import types


class CallableModule(types.ModuleType):
    """A module whose call is the scalelaw.api function of the same name."""

    def __call__(self, *args, **kwargs):
        from . import api
        return getattr(api, self.__name__.rsplit(".", 1)[1])(*args, **kwargs)


def make_callable(name: str) -> None:
    sys.modules[name].__class__ = CallableModule
