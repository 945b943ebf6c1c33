"""Whatever a person types as a number, a task answers with a number or one UsageError line, never a traceback."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

import tasks
from enlaight_ops.errors import UsageError
from enlaight_ops.settings import load_settings

SETTINGS = load_settings({}, root=tasks.STACK_ROOT)


@given(st.text(max_size=20))
def test_timeout_is_a_positive_number_or_one_usage_error(text: str):
    try:
        seconds = tasks._seconds(text, SETTINGS)
    except UsageError as exc:
        assert "--timeout" in str(exc) and "\n" not in str(exc)
    else:
        assert seconds > 0 and not math.isnan(seconds)


@given(st.text(max_size=20))
def test_keep_is_a_whole_number_or_one_usage_error(text: str):
    try:
        keep = tasks._whole_number(text, "--keep")
    except UsageError as exc:
        assert "--keep" in str(exc) and "\n" not in str(exc)
    else:
        assert isinstance(keep, int) and keep >= 1


def test_absent_values_take_the_defaults():
    assert tasks._seconds(None, SETTINGS) == SETTINGS.wait_timeout
    assert tasks._whole_number(None, "--keep") is None
