"""Command-line options generated from a config dataclass, so each knob is declared once.

A field declared with :func:`knob` carries its help text, its option group and how the command line
parses it in ``field(metadata=...)``; :func:`add_options` turns every such field into one argparse
option and :func:`given_options` reads back the fields the user gave. Range checks are not done here:
the config's own ``validate()`` is the one place that says what values are allowed, for flags and for
configs read from disk alike. Parsing only converts text (``int``, ``float``, a choice).

Flags default to ``None`` ("not given"), so a preset's value is kept unless the user overrides it and
``--resume`` can tell which fields the user tries to change.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Callable

__all__ = [
    "add_dist_timeout",
    "add_options",
    "config_from_options",
    "flag_of",
    "given_options",
    "knob",
    "option_fields",
]


def knob(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    group: str,
    default_factory: Callable[[], Any] | Any = dataclasses.MISSING,
    type: Callable[[str], Any] | None = None,
    choices: tuple | None = None,
    nargs: str | None = None,
    metavar: str | None = None,
    aliases: tuple[str, ...] = (),
    boolean: bool = False,
) -> Any:
    """A dataclass field that is also a command-line option ``--field-name``.

    ``boolean`` makes a ``--x/--no-x`` pair; ``aliases`` are older spellings of the flag, accepted but
    hidden from ``--help``.
    """
    meta = dict(
        help=help,
        group=group,
        type=type,
        choices=choices,
        nargs=nargs,
        metavar=metavar,
        aliases=tuple(aliases),
        boolean=boolean,
    )
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata={"option": meta})
    return dataclasses.field(default=default, metadata={"option": meta})


def flag_of(name: str) -> str:
    """The command-line spelling of field ``name``: ``max_steps`` → ``--max-steps``."""
    return "--" + name.replace("_", "-")


def option_fields(cls) -> list[dataclasses.Field]:
    """The fields of dataclass ``cls`` that are command-line options, in declaration order."""
    return [f for f in dataclasses.fields(cls) if "option" in f.metadata]


def _argparse_kwargs(meta: dict) -> dict:
    if meta["boolean"]:
        return dict(action=argparse.BooleanOptionalAction)
    kw = {k: meta[k] for k in ("type", "choices", "nargs", "metavar") if meta[k] is not None}
    return kw


def add_options(parser: argparse.ArgumentParser, cls, *, groups: dict[str, str] | None = None) -> None:
    """Add one option per :func:`knob` field of ``cls`` to ``parser``, grouped by the fields' ``group``.

    ``groups`` optionally maps a group name to the title shown in ``--help``.
    """
    made: dict[str, argparse._ArgumentGroup] = {}
    for f in option_fields(cls):
        meta = f.metadata["option"]
        name = meta["group"]
        if name not in made:
            made[name] = parser.add_argument_group((groups or {}).get(name, name))
        kw = _argparse_kwargs(meta)
        made[name].add_argument(flag_of(f.name), dest=f.name, default=None, help=meta["help"], **kw)
        for alias in meta["aliases"]:
            if meta["boolean"] and alias.startswith("--no-"):  # an old spelling of the negative form only
                parser.add_argument(alias, dest=f.name, action="store_false", default=None, help=argparse.SUPPRESS)
            else:
                parser.add_argument(alias, dest=f.name, default=None, help=argparse.SUPPRESS, **kw)


def given_options(args: argparse.Namespace, cls) -> dict[str, Any]:
    """The :func:`knob` fields of ``cls`` that the user gave on the command line."""
    return {f.name: getattr(args, f.name) for f in option_fields(cls) if getattr(args, f.name, None) is not None}


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"expected a positive, finite number of seconds, got {text!r}")
    return value


def add_dist_timeout(parser: argparse.ArgumentParser) -> None:
    """``--dist-timeout SECONDS``, the run-control flag both commands share under ``torchrun``."""
    parser.add_argument(
        "--dist-timeout",
        type=_positive_seconds,
        default=300.0,
        metavar="SECONDS",
        help="under torchrun: how long a process waits for the others in a collective before it stops with "
        "an error, e.g. when another rank died or hangs (default 300)",
    )


def config_from_options(cls, options: dict, validate: Callable[[Any], None], *, what: str = "options"):
    """``cls(**options)`` with the options given (None: not given, the field's default), then
    ``validate``; ``ValueError`` for names that are not fields of ``cls``."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise ValueError(f"unknown {what} {unknown}")
    cfg = cls(**{k: v for k, v in options.items() if v is not None})
    validate(cfg)
    return cfg
