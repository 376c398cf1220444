"""Each knob is declared once: the command lines are generated from the config dataclasses."""

import argparse
import dataclasses

import pytest

from gancore.common.options import flag_of, option_fields
from gancore.evaluate import cli as evaluate_cli
from gancore.evaluate.config import EvalConfig
from gancore.train import config as train_config
from gancore.train import flags as train_flags


def _options(parser: argparse.ArgumentParser) -> set[str]:
    """Every visible option string of ``parser`` (hidden aliases excluded), positionals by dest."""
    out = set()
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
            continue
        long = [o for o in action.option_strings if o.startswith("--")] or [action.dest]
        for o in long:
            if not o.startswith("--no-") or not isinstance(action, argparse.BooleanOptionalAction):
                out.add(o)
    return out


@pytest.mark.parametrize(
    "parser,cls,run_control",
    [
        (train_flags.build_parser(), train_config.TrainConfig, train_flags.RUN_CONTROL),
        (evaluate_cli.build_parser(), EvalConfig, evaluate_cli.RUN_CONTROL),
    ],
    ids=["train", "evaluate"],
)
def test_parser_options_are_the_config_fields_plus_the_run_control_flags(parser, cls, run_control):
    fields = {flag_of(f.name) for f in option_fields(cls)}
    assert _options(parser) == fields | set(run_control)
    # every option field has help text and a group; the non-option fields are the documented few
    assert all(f.metadata["option"]["help"] and f.metadata["option"]["group"] for f in option_fields(cls))


def test_train_config_fields_that_are_not_flags_are_set_by_run_control_or_derived():
    rest = {f.name for f in dataclasses.fields(train_config.TrainConfig)} - {
        f.name for f in option_fields(train_config.TrainConfig)
    }
    assert rest == {"preset", "dry_run", "image_shape"}


def test_generated_flags_reach_the_config_and_old_spellings_still_work():
    p = evaluate_cli.build_parser()
    args = p.parse_args(["RUN", "--no-memorisation", "--memorisation-samples", "7", "--cells", "3"])
    from gancore.common.options import given_options

    assert given_options(args, EvalConfig) == {"memorization": False, "memorization_samples": 7, "cells": 3}
    assert "--no-memorisation" not in p.format_help()  # hidden alias
    t = train_flags.build_parser().parse_args(["--g-hidden", "10", "20", "--no-d-loss-halved", "--lr", "0.5"])
    assert train_flags.config_overrides(t) == {"g_hidden": [10, 20], "d_loss_halved": False, "lr": 0.5}
