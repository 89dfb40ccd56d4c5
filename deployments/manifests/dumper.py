"""The YAML dumper: kubectl-style indentation, strings no YAML reader can mistake."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import yaml


class _Literal(str):
    """A multi-line text (script, data file) emitted in literal block style when possible."""

    __slots__ = ()


# Plain (unquoted) only for strings nobody's YAML parser can read as anything but a string:
# starts with a letter or '/', no ': ' or ' #', and not a YAML 1.1 / 1.2 keyword.
_PLAIN_SAFE = re.compile(r"^[A-Za-z/][A-Za-z0-9._/@:+-]*\Z")
_YAML_KEYWORDS = frozenset(
    "y n yes no on off true false null nan inf".split()  # go-yaml v2 reads y/n as booleans
)


# The emitter's analysis of a scalar, by (text, allow_unicode): a manifest's long scripts and
# its repeated keys were analysed character by character on every render (a render of the
# golden input took 2.45 ms, 1.76 ms with this; a rebase renders thousands of manifests). The
# analysis reads nothing but its two keys, and the emitter only reads what it returns.
_ANALYSES: dict[tuple[str, bool], Any] = {}
_ANALYSES_MAX = 4096


class _Dumper(yaml.SafeDumper):
    """SafeDumper that never lets a string be re-read as another type by any YAML reader."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # Indent sequences inside mappings (kubectl style) instead of PyYAML's flush style.
        super().increase_indent(flow, False)

    def analyze_scalar(self, scalar: str) -> Any:
        key = (scalar, bool(self.allow_unicode))
        analysis = _ANALYSES.get(key)
        if analysis is None:
            analysis = super().analyze_scalar(scalar)
            if len(_ANALYSES) < _ANALYSES_MAX:
                _ANALYSES[key] = analysis
        return analysis


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    tag = "tag:yaml.org,2002:str"
    # types-PyYAML leaves BaseResolver.resolve unannotated; it returns the resolved tag.
    resolve: Callable[[type[yaml.Node], str, tuple[bool, bool]], str] = dumper.resolve
    if isinstance(value, _Literal) and "\n" in value:
        return dumper.represent_scalar(tag, str(value), style="|")
    value = str(value)  # libyaml's emitter takes only exact str (a one-line _Literal)
    if (
        _PLAIN_SAFE.match(value)
        and value.lower() not in _YAML_KEYWORDS
        and not value.endswith(":")
        and resolve(yaml.ScalarNode, value, (True, False)) == tag
    ):
        return dumper.represent_scalar(tag, value)
    printable_ascii = all(" " <= char <= "~" for char in value)
    return dumper.represent_scalar(tag, value, style="'" if printable_ascii else '"')


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(_Literal, _represent_str)

# The same string rules on libyaml's C emitter (about 10x faster; sequences not indented
# under their key), for documents of many thousand entries such as the admission policy.
_FastBase: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _FastDumper(_FastBase):  # type: ignore[valid-type,misc]  # CSafeDumper is untyped
    """libyaml's emitter with `_represent_str`; repeated lists are written out, never aliased."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


_FastDumper.add_representer(str, _represent_str)
_FastDumper.add_representer(_Literal, _represent_str)


def to_yaml_large(documents: Iterable[dict[str, Any]]) -> str:
    """`to_yaml` for large documents: the C emitter, no anchors."""
    return _dump_all(documents, _FastDumper)


def to_yaml(documents: Iterable[dict[str, Any]]) -> str:
    """Serialise Kubernetes objects as multi-document YAML, keys in insertion order."""
    return _dump_all(documents, _Dumper)


def _dump_all(documents: Iterable[dict[str, Any]], dumper: type[Any]) -> str:
    return yaml.dump_all(
        list(documents),
        Dumper=dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        explicit_start=True,
        width=4096,
    )
