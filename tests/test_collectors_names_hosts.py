"""One host-name normalisation (collectors.names.host_name) and its alias file."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path[:0] = [p for p in (str(Path(__file__).resolve().parents[1]),) if p not in sys.path]

from collectors.names import HostAliasError, host_name, load_host_aliases  # noqa: E402


@pytest.mark.parametrize("seen, node", [
    ("gpu-7", "gpu-7"), ("gpu-7.example.internal", "gpu-7"), ("GPU-7.Example.Internal.", "gpu-7"),
    ("ip-100-64-171-120.ec2.internal", "ip-100-64-171-120"), ("10.0.0.7", "10.0.0.7"), ("[::1]", "::1"),
])
def test_every_spelling_of_a_host_is_one_node(seen, node):
    assert host_name(seen) == node


def test_aliases_match_the_full_or_short_name(tmp_path):
    path = tmp_path / "nodes.yaml"
    path.write_text("aliases:\n  IP-100-64-171-120.ec2.internal: gpu-7\n  10.0.0.8: gpu-8\n  old-name: gpu-9\n")
    aliases = load_host_aliases(path)
    assert host_name("ip-100-64-171-120.EC2.internal", aliases) == "gpu-7"
    assert host_name("10.0.0.8", aliases) == "gpu-8"
    assert host_name("old-name.corp", aliases) == "gpu-9"
    assert host_name("other.corp", aliases) == "other"


@pytest.mark.parametrize("text, message", [
    ("aliases: [a, b]\n", "must be a mapping"),
    ("aliases:\n  a: \"\"\n", "aliases.a"),
    ("aliases:\n  A: x\n  a: y\n", "given twice"),
    ("alias:\n  a: x\n", "unknown field 'alias'"),
])
def test_a_bad_alias_file_names_file_and_field(tmp_path, text, message):
    path = tmp_path / "nodes.yaml"
    path.write_text(text)
    with pytest.raises(HostAliasError, match=message) as exc:
        load_host_aliases(path)
    assert str(path) in str(exc.value)
