"""Bad params.yaml values and files: each error names its key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fuzzing import config_targets, field_accepts
from fuzzing.core import parse_prepare, starts

from augment.errors import ConfigError
from pipelines._common import load_params

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow on corrupt files


def test_every_config_key_names_itself_when_wrong() -> None:
    """Every field of every model reachable from params.yaml (variants' Params included),
    set to values of the wrong type or range: a one-line ConfigError naming the key."""
    checked = 0
    for target in config_targets():
        for name in target.model.model_fields:
            if name == "kind" and target.base:
                continue
            for value in ({"a": {"b": [1]}}, ["x"], "abc", None, -1, 10**30):
                if field_accepts(target.model, name, value):
                    continue
                with pytest.raises(ConfigError) as error:
                    target.parse({**dict(target.base), name: value})
                message = str(error.value)
                assert message.startswith(target.key(name)) and "\n" not in message, message
                checked += 1
        with pytest.raises(ConfigError, match=rf"^{re.escape(target.key('typo'))}: unknown key"):
            target.parse({**dict(target.base), "typo": 1})
    assert checked > 500


def test_source_errors_name_the_key_without_the_union_tag() -> None:
    with pytest.raises(ConfigError, match=r"^params\.yaml prepare\.source\.path: Input should"):
        parse_prepare({"source": {"kind": "csv", "path": 3}})
    with pytest.raises(ConfigError, match=r"^params\.yaml prepare\.source\.kind: Input tag 'x'"):
        parse_prepare({"source": {"kind": "x"}})
    with pytest.raises(ConfigError, match=r"^params\.yaml prepare\.source\.root: missing"):
        parse_prepare({"source": {"kind": "folder"}})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"- 1\n- 2\n", r"expected a mapping at the top level"),
        (b"", r"expected a mapping at the top level"),
        (b"a: [1\nb: 2\n", r"not valid YAML \(expected ',' or '\]', but got ':' at line 2"),
        (b"\xff\xfe\x00", r"not UTF-8 text \(byte 0\)"),
        (b"[" * 700 + b"]" * 700, r"not valid YAML \(RecursionError\)"),
        (b"a: !!python/object:os.system x", r"not valid YAML \(could not determine a const"),
    ],
)
def test_params_files_that_are_not_a_mapping(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "params.yaml"
    path.write_bytes(data)
    with pytest.raises(ConfigError, match=starts(path, message)):
        load_params(path)
    with pytest.raises(ConfigError, match=starts(tmp_path, "cannot read")):
        load_params(tmp_path)
