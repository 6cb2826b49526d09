"""Input files read at the edge: size-capped, UTF-8 checked, YAML with duplicate keys and alias
bombs refused. The one owner of how t2c-sim reads an input file: recipes, suites, hardware
configs (YAML), record manifests, network indexes, bundles and results (JSON), SCALE-Sim CSVs.

Every problem is one :class:`~t2c_sim.errors.T2CError` naming the file (and the line and key
where there is one), never a ``UnicodeDecodeError`` or a parser's traceback; a FIFO or a device
node is never opened (reading one could block forever). :mod:`t2c_sim.files` re-exports
:func:`read_yaml` (its historical home).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import yaml

from t2c_sim.errors import ConfigError, T2CError
from t2c_sim.limits import MAX_JSON_BYTES, MAX_TEXT_BYTES, MAX_YAML_NODES, human_bytes

__all__ = ["file_kind", "read_bytes", "decode_text", "read_text", "read_json", "read_yaml",
           "read_yaml_node"]


def file_kind(mode: int) -> str:
    """What a non-regular file is, for a message: ``"a directory"``, ``"a FIFO"``..."""
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISLNK, "a symbolic link"),
                       (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def read_bytes(path: str | Path, what: str = "file", *, limit: int = MAX_TEXT_BYTES,
               error: type[T2CError] = ConfigError) -> bytes:
    """The bytes of an input file, refused (one :class:`T2CError` naming it) when it is missing,
    not a regular file (a folder, FIFO or device: reading one could block or never end) or
    larger than ``limit`` bytes."""
    p = Path(path)
    try:
        st = os.stat(p)
    except (FileNotFoundError, NotADirectoryError):
        raise error(f"{what} not found", file=str(p)) from None
    except OSError as e:
        raise error(f"cannot read {what} ({e.strerror})", file=str(p)) from None
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{what} is {file_kind(st.st_mode)}, not a regular file", file=str(p))

    def too_big(size: int) -> T2CError:
        return error(f"{what} is larger than the limit {human_bytes(limit)} for this kind of "
                     f"input ({size} bytes)", file=str(p))

    if st.st_size > limit:
        raise too_big(st.st_size)
    try:
        with open(p, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as e:
        raise error(f"cannot read {what} ({e.strerror})", file=str(p)) from None
    if len(data) > limit:
        raise too_big(len(data))
    return data


def decode_text(data: bytes, file: str, what: str = "file", *,
                error: type[T2CError] = ConfigError) -> str:
    """``data`` as UTF-8 text without NUL bytes; otherwise an error naming the file and line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise error(f"{what} is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}; "
                    "a binary file?)", file=file, line=line) from None
    nul = text.find("\0")
    if nul >= 0:
        raise error(f"{what} contains a NUL byte (offset {nul}; a binary file?)", file=file,
                    line=text.count("\n", 0, nul) + 1)
    return text


def read_text(path: str | Path, what: str = "file", *, limit: int = MAX_TEXT_BYTES,
              error: type[T2CError] = ConfigError) -> str:
    """:func:`read_bytes` + :func:`decode_text`."""
    return decode_text(read_bytes(path, what, limit=limit, error=error), str(path), what,
                       error=error)


def read_json(path: str | Path, what: str = "file", *, limit: int = MAX_JSON_BYTES,
              error: type[T2CError] = ConfigError) -> Any:
    """Parse a JSON input file; every problem is one ``error`` naming the file (and line)."""
    text = read_text(path, what, limit=limit, error=error)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{what} is not valid JSON ({e.msg}, column {e.colno})", file=str(path),
                    line=e.lineno) from None
    except RecursionError:
        raise error(f"{what} is nested too deeply", file=str(path)) from None


class _YamlProblem(Exception):
    def __init__(self, detail: str, line: int | None = None, key: str | None = None) -> None:
        super().__init__(detail)
        self.detail, self.line, self.key = detail, line, key


_MERGE = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == _MERGE or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    dup = key in seen
                except TypeError:  # unhashable: PyYAML reports it
                    continue
                if dup:
                    raise _YamlProblem("duplicate key (YAML would silently keep the last one)",
                                       line=key_node.start_mark.line + 1, key=str(key))
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _expanded_nodes(root: yaml.Node, limit: int) -> int:
    """Nodes of the document with every alias expanded where it is used; refuses more than
    ``limit`` and a recursive alias (an anchor used inside itself)."""
    memo: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        i = id(node)
        if i in memo:
            return memo[i]
        if i in active:
            raise _YamlProblem("a recursive alias (an anchor used inside itself)",
                               line=node.start_mark.line + 1)
        active.add(i)
        n = 1
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [x for pair in node.value for x in pair]
        else:
            children = []
        for c in children:
            n += size(c)
            if n > limit:
                raise _YamlProblem(f"expands to more than {limit} nodes (aliases count at every "
                                   "use); the limit guards against alias bombs",
                                   line=node.start_mark.line + 1)
        active.discard(i)
        memo[i] = n
        return n

    return size(root)


def read_yaml(path: str | Path, what: str = "file") -> Any:
    """Parse a YAML input file (recipe, suite, hardware config) at the edge.

    Refused with one :class:`ConfigError` naming the file (and the line, and the key where
    there is one): a missing or non-regular file, more than :data:`~t2c_sim.limits.MAX_TEXT_BYTES`,
    bytes that are not UTF-8 text, a syntax error, a key given twice in one mapping, a
    document expanding to more than :data:`~t2c_sim.limits.MAX_YAML_NODES` nodes (an alias
    bomb) or holding a recursive alias, nesting too deep to parse.
    """
    return read_yaml_node(path, what)[0]


def read_yaml_node(path: str | Path, what: str = "file") -> tuple[Any, yaml.Node | None]:
    """:func:`read_yaml` that also returns the document's node tree (``None`` for an empty
    document), whose marks give the line of every key (DUT files name the line of a bad key)."""
    p = Path(path)
    text = read_text(p, what)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        _expanded_nodes(node, MAX_YAML_NODES)
        return loader.construct_document(node), node
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None)
        raise ConfigError(f"not valid YAML ({problem})" if problem else "not valid YAML",
                          file=str(p), line=mark.line + 1 if mark is not None else None) \
            from None
    except _YamlProblem as e:
        raise ConfigError(e.detail, file=str(p), line=e.line, key=e.key) from None
    except RecursionError:
        raise ConfigError("nested too deeply to parse", file=str(p)) from None
    finally:
        loader.dispose()
