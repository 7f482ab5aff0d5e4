"""The package's one error hierarchy. Everything it raises for bad input is a :class:`WeightprintError`:

- :class:`WeightprintFormatError`: a file's bytes break its format (safetensors, GGUF, index JSON,
  a saved fingerprint: :class:`FingerprintFileError`);
- :class:`InputError`: what was asked for cannot be done with what was given: a missing or
  unreadable path (:class:`CheckpointNotFoundError`), an argument out of range, an array of the
  wrong dtype or layout, a missing optional dependency (:class:`MissingExtraError`);
- :class:`ConfigError`: a checkpoint's configuration (config.json, GGUF metadata, adapter config,
  a name map) is missing what is needed or holds an impossible value; the message names the key
  (:class:`UnknownArchitectureError`: no tensor name matched a naming scheme);
- :class:`StoreError`: a fingerprint store cannot be opened, read or written;
- :class:`EngineError`: the native engine could not finish (out of memory, a LAPACK failure).

The base derives from ``ValueError``, so code written against earlier versions keeps working. The
engine's errors are created by the native module (``_core``), so that C++ exceptions arrive as
these types; the rest are defined here. The CLI maps every ``WeightprintError`` to one line and
exit status 2; anything else is a bug.
"""

from __future__ import annotations

from ._core import EngineError, InputError, WeightprintError, WeightprintFormatError


class CheckpointNotFoundError(InputError, FileNotFoundError):
    """No file or directory at the path, and no such Hugging Face cache reference."""


class MissingExtraError(InputError, ImportError):
    """An optional dependency is not installed (the message names the extra to install)."""


class ConfigError(WeightprintError):
    """A checkpoint's configuration is missing a needed value or holds an impossible one."""


class UnknownArchitectureError(ConfigError):
    """No tensor name matched a known naming scheme (``--name-map`` / ``name_patterns`` maps them)."""


class FingerprintFileError(WeightprintFormatError):
    """A saved fingerprint is damaged, or from a newer schema than this version reads."""


class StoreError(WeightprintError):
    """A fingerprint store cannot be opened, read or written."""


__all__ = [
    "CheckpointNotFoundError",
    "ConfigError",
    "EngineError",
    "FingerprintFileError",
    "InputError",
    "MissingExtraError",
    "StoreError",
    "UnknownArchitectureError",
    "WeightprintError",
    "WeightprintFormatError",
]
