"""The toolkit reads .env files exactly as Compose does: checked against the real `docker compose config`.

Masking, the doctor and seed all read .env with envfile.parse_env; if it disagreed with Compose, a secret
followed by a comment would go unmasked and a placeholder followed by a comment would pass `doctor --prod`.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from enlaight_ops.envfile import parse_env

# Odd but valid lines people write; every key is read back through Compose.
CORPUS = r"""
PLAIN=value
INLINE_COMMENT=secret-value # a note
HASH_INSIDE=abc#def
EMPTY=
SPACES_AROUND = spaced
export EXPORTED=from-export
SINGLE='single # not a comment'
DOUBLE="double # not a comment"
DOUBLE_ESCAPES="line\nnext"
SINGLE_RAW='raw\nvalue'
PLACEHOLDER=__CHANGE_ME__   # set this
URL=mysql://user:p%40ss@host:3306/db?x=1&y=2
EQUALS=a=b=c
"""


def test_parse_env_agrees_with_compose(compose_argv, tmp_path: Path):
    env_file = tmp_path / "odd.env"
    text = CORPUS + "TRAILING_SPACES=trimmed   \n"  # built here: the file itself keeps no trailing whitespace
    env_file.write_text(text)
    ours = parse_env(text)
    environment = "\n".join(f"      {key}: ${{{key}}}" for key in ours)
    (tmp_path / "compose.yml").write_text(f"services:\n  probe:\n    image: scratch\n    environment:\n{environment}\n")
    argv = [*compose_argv, "--project-directory", str(tmp_path), "--file", str(tmp_path / "compose.yml"),
            "--env-file", str(env_file), "config", "--format", "json"]  # fmt: skip
    # Only PATH: Compose lets the process environment win over the env file.
    result = subprocess.run(argv, capture_output=True, text=True, check=True, env={"PATH": os.environ["PATH"]})
    theirs = json.loads(result.stdout)["services"]["probe"]["environment"]
    assert len(ours) == 14, ours
    assert {key: theirs.get(key) or "" for key in ours} == ours
    assert ours["INLINE_COMMENT"] == "secret-value" and ours["PLACEHOLDER"] == "__CHANGE_ME__"
