"""Fuzzing the config loader: whatever the file holds, it raises its own one-line
ConfigError or returns a config; never another exception, never a traceback."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from appliance.device.config import load_config, parse_config
from appliance.errors import ConfigError
from tests.conftest import EXAMPLE

EXAMPLE_RAW = yaml.safe_load(EXAMPLE.read_text())
DEVICE_RAW = yaml.safe_load((EXAMPLE.parent / "device.yaml").read_text())

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
                    st.sampled_from(["", "-", "front", "{camera}", "$SYS", "a/#", "1e999",
                                     "../../etc/passwd", "rtsp://u:p@h/x", "picamera:9"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12)


def paths(node, prefix=()):
    """Every place in a parsed YAML tree, to put a fuzzed value at."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from paths(value, (*prefix, i))


PLACES = sorted({p for raw in (EXAMPLE_RAW, DEVICE_RAW) for p in paths(raw) if p},
                key=str)


def check(raw) -> None:
    try:
        parse_config(raw, Path("fuzz.yaml"))
    except ConfigError as error:
        assert "\n" not in str(error) and str(error).startswith("fuzz.yaml")


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([EXAMPLE_RAW, DEVICE_RAW]), st.lists(
    st.tuples(st.sampled_from(PLACES), values), min_size=1, max_size=3))
def test_mutated_configs_raise_only_config_errors(base, mutations):
    raw = copy.deepcopy(base)
    for place, value in mutations:
        node = raw
        try:
            for key in place[:-1]:
                node = node[key]
            node[place[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed this place
    check(raw)


@settings(max_examples=1000, deadline=None)
@given(values)
def test_arbitrary_documents_raise_only_config_errors(raw):
    check(raw)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_files_raise_only_config_errors(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "device.yaml"
    path.write_text(text)
    try:
        load_config(path)
    except ConfigError as error:
        assert "\n" not in str(error)


DICT_PLACES = [p for p in PLACES if isinstance(p[-1], str)]


@settings(max_examples=1000, deadline=None)
@given(st.sampled_from([EXAMPLE_RAW, DEVICE_RAW]), st.sampled_from(DICT_PLACES),
       st.one_of(st.text(max_size=20), st.integers(), st.none(), st.booleans()))
def test_renamed_keys_raise_only_config_errors(base, place, new_key):
    raw = copy.deepcopy(base)
    node = raw
    try:
        for key in place[:-1]:
            node = node[key]
        node[new_key] = node.pop(place[-1])
    except (KeyError, IndexError, TypeError):
        assume(False)  # this place is in the other example only
    check(raw)
