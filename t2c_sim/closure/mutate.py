"""Source-level mutants of Verilog RTL, found on the parsed syntax tree (pyslang).

Why source-level operators on pyslang's syntax tree, not Yosys ``mutate``:

* A source mutant is one edit of the RTL text: its unified diff reads like a bug a designer
  could have written (``>>>`` became ``>>``, the rounding increment was dropped), so a
  survivor can be judged and waived by a person, keyed by the line's text.
* It runs on every simulator the flow supports (Icarus and Verilator build the mutated file
  as they build ``rtl/``), through the same co-simulation and the same checkers.
* Yosys ``mutate`` works on the netlist after ``proc``/``opt``: its mutants (an inverted cell
  input, a stuck bit of a wire, a swapped connection) are found and reported in terms of
  netlist cells and bits, must be simulated as a generated netlist, and cannot express the
  operators that matter for an integer datapath (signedness, shift kind, operator choice,
  constant off by one). Yosys is still used, cheaply, to detect equivalent mutants
  (:mod:`t2c_sim.closure.netlist`): a mutant whose optimized netlist equals the original's is
  equivalent under the simulated parameters.
* pyslang (slang's parser) gives exact byte ranges for every expression, so a mutant is a
  replacement of ``text[start:end]``; nothing is pretty-printed, the rest of the file is
  untouched.

Operators (``Mutant.operator``):

========== ==============================================================================
arith      ``+`` <-> ``-``, ``*`` -> ``+``, ``/`` -> ``*``
relational ``<`` -> ``<=``, ``>`` -> ``>=``, ``<=`` -> ``<``, ``>=`` -> ``>``, ``==`` <-> ``!=``
logical    ``&&`` <-> ``||``, ``&`` <-> ``|``, ``^`` -> ``|``, ``|x`` -> ``&x``
shift      ``<<`` -> ``>>``
sign       ``>>>`` <-> ``>>``, ``$signed(x)`` -> ``(x)``, a ``signed`` keyword removed
const      an integer literal plus or minus one (sized literals keep their width and base)
negate     ``if (c)`` -> ``if (!(c))``, ``c ? a : b`` -> ``!(c) ? a : b``
drop_term  ``a + b`` -> ``a`` or ``b``, ``a - b`` -> ``a`` (e.g. the rounding increment)
unary      ``!x``, ``~x``, ``-x`` -> ``x``
bitsel     ``x[i]`` -> ``x[(i) + 1]`` / ``x[(i) - 1]``; ``x[b +: w]`` with ``b`` plus or minus one
stuck0     an assignment's right-hand side becomes ``0``
hold       a register assignment ``q <= d`` becomes ``q <= q`` (never updates)
========== ==============================================================================

Not mutated: ``initial`` blocks (elaboration-time parameter checks, covered by the
illegal-parameter tests), parameter port defaults (every build overrides them), declared
widths and types (dimensions), loop initializers and steps (a mutant there can hang
elaboration). Selection is deterministic: every candidate site in file and offset order,
then a seeded, operator-stratified sample (:func:`select_mutants`).

Example::

    muts = select_mutants(enumerate_mutants(RTL_DIR), count=200, seed=1)
    muts[0].diff(RTL_DIR)      # unified diff of the first mutant
"""

from __future__ import annotations

import difflib
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from t2c_sim.closure.waivers import read_waiver_entries
from t2c_sim.errors import ConfigError

__all__ = ["OPERATORS", "Mutant", "Waiver", "enumerate_file", "enumerate_mutants",
           "select_mutants", "write_mutant_tree", "load_waivers", "find_waiver"]

OPERATORS = ("arith", "relational", "logical", "shift", "sign", "const", "negate", "drop_term",
             "unary", "bitsel", "stuck0", "hold")

_BINARY = {
    "AddExpression": ("arith", "-"), "SubtractExpression": ("arith", "+"),
    "MultiplyExpression": ("arith", "+"), "DivideExpression": ("arith", "*"),
    "LessThanExpression": ("relational", "<="), "GreaterThanExpression": ("relational", ">="),
    "LessThanEqualExpression": ("relational", "<"),
    "GreaterThanEqualExpression": ("relational", ">"),
    "EqualityExpression": ("relational", "!="), "InequalityExpression": ("relational", "=="),
    "LogicalAndExpression": ("logical", "||"), "LogicalOrExpression": ("logical", "&&"),
    "BinaryAndExpression": ("logical", "|"), "BinaryOrExpression": ("logical", "&"),
    "BinaryXorExpression": ("logical", "|"),
    "LogicalShiftLeftExpression": ("shift", ">>"),
    "ArithmeticShiftRightExpression": ("sign", ">>"),
    "LogicalShiftRightExpression": ("sign", ">>>"),
}
_UNARY_DROP = ("UnaryLogicalNotExpression", "UnaryBitwiseNotExpression", "UnaryMinusExpression")
# Subtrees never mutated (see the module docstring), by syntax kind.
_SKIP_SUBTREE = {"InitialBlock", "ParameterPortList", "VariableDimension",
                 "RangeDimensionSpecifier", "ImplicitType", "RegType", "IntegerType",
                 "LogicType", "BitType"}
_VEC = re.compile(r"^(\d+)\s*'\s*([sS]?)([bBdDhHoO])\s*([0-9a-fA-F_]+)$")


@dataclass(frozen=True)
class Mutant:
    """One mutation: replace ``text[start:end]`` of ``file`` with ``replacement``.

    Attributes:
        id: Stable identifier ``<file stem>:<line>:<col>:<operator>[:<k>]``.
        file: File name inside the RTL folder (``t2c_requant.v``).
        line: 1-based line of the mutated text.
        col: 1-based column.
        operator: One of :data:`OPERATORS`.
        original: The text replaced.
        replacement: The new text.
        start: Byte offset of ``original`` in the file.
        end: End offset (exclusive).
        line_text: The original source line, stripped (waivers match it, not line numbers).
        line_off: Offset of ``original`` in ``line_text`` (tells apart two equal operators on
            one line; -1 when unknown, e.g. a report written before it existed).
    """

    id: str
    file: str
    line: int
    col: int
    operator: str
    original: str
    replacement: str
    start: int
    end: int
    line_text: str
    line_off: int = -1

    def apply(self, text: str) -> str:
        """``text`` with the mutation applied (checks that ``original`` is still there)."""
        if text[self.start:self.end] != self.original:
            raise ConfigError(f"mutant {self.id}: {self.original!r} is not at offset "
                              f"{self.start} (the file changed)", file=self.file)
        return text[:self.start] + self.replacement + text[self.end:]

    def diff(self, rtl_dir: str | Path) -> str:
        """Unified diff (3 lines of context) of the mutant against ``rtl_dir/<file>``."""
        text = (Path(rtl_dir) / self.file).read_text()
        new = self.apply(text)
        return "".join(difflib.unified_diff(text.splitlines(True), new.splitlines(True),
                                            f"a/rtl/{self.file}", f"b/rtl/{self.file}", n=3))

    def to_dict(self) -> dict:
        return asdict(self)


def _line_col(text: str, off: int) -> tuple[int, int]:
    line = text.count("\n", 0, off) + 1
    return line, off - (text.rfind("\n", 0, off) + 1) + 1


def _literal_variants(lit: str) -> list[str]:
    """Off-by-one variants of an integer literal (same size and base), or [] if not numeric."""
    lit = lit.strip()
    if re.fullmatch(r"\d+", lit.replace("_", "")):
        v = int(lit.replace("_", ""))
        return [str(x) for x in (v + 1, v - 1) if x >= 0]
    m = _VEC.match(lit)
    if not m:
        return []
    size, sgn, base, digits = int(m.group(1)), m.group(2), m.group(3).lower(), m.group(4)
    radix = {"b": 2, "d": 10, "h": 16, "o": 8}[base]
    try:
        v = int(digits.replace("_", ""), radix)
    except ValueError:
        return []
    mask = (1 << size) - 1
    out = []
    for x in ((v + 1) & mask, (v - 1) & mask):
        if x == v:
            continue
        d = {"b": f"{x:b}", "d": f"{x:d}", "h": f"{x:x}", "o": f"{x:o}"}[base]
        s = f"{size}'{sgn}{m.group(3)}{d}"
        if s not in out:
            out.append(s)
    return out


def enumerate_file(path: str | Path) -> list[Mutant]:
    """Every candidate mutant of one Verilog file, in offset order (see the module docstring).

    Raises:
        ConfigError: The file does not parse (names the file and the first diagnostic).
    """
    from pyslang import syntax

    path = Path(path)
    text = path.read_text()
    tree = syntax.SyntaxTree.fromText(text, str(path.name))
    diags = [d for d in tree.diagnostics if d.isError()]
    if diags:
        raise ConfigError(f"cannot parse: {diags[0].code}", file=str(path))
    skip: list[tuple[int, int]] = []
    hard: list[tuple[int, int]] = []  # also for `signed` keywords: initial blocks, parameter ports
    found: list[tuple[int, int, str, str]] = []  # (start, end, operator, replacement)

    def rng(node) -> tuple[int, int]:
        r = node.sourceRange
        return r.start.offset, r.end.offset

    def src(node) -> str:
        a, b = rng(node)
        return text[a:b]

    def visit(node) -> bool:
        k = node.kind.name
        if k in _SKIP_SUBTREE:
            skip.append(rng(node))
            if k in ("InitialBlock", "ParameterPortList"):
                hard.append(rng(node))
            return True
        if k == "ForLoopStatement":
            for part in (node.initializers, node.steps):
                for item in part:
                    if hasattr(item, "sourceRange"):
                        skip.append(rng(item))
        elif k == "LoopGenerate":
            skip.append((rng(node)[0], rng(node.block)[0]))
        if k in _BINARY:
            op, rep = _BINARY[k]
            t = node.operatorToken
            a = t.range.start.offset
            found.append((a, a + len(t.rawText), op, rep))
            if k in ("AddExpression", "SubtractExpression"):
                found.append((*rng(node), "drop_term", src(node.left)))
                if k == "AddExpression":
                    found.append((*rng(node), "drop_term", src(node.right)))
        elif k in _UNARY_DROP:
            found.append((*rng(node), "unary", src(node.operand)))
        elif k == "UnaryBitwiseOrExpression":
            t = node.operatorToken
            a = t.range.start.offset
            found.append((a, a + 1, "logical", "&"))
        elif k in ("IntegerLiteralExpression", "IntegerVectorExpression"):
            for v in _literal_variants(src(node)):
                found.append((*rng(node), "const", v))
        elif k == "ConditionalStatement":
            for cond in node.predicate.conditions:
                found.append((*rng(cond), "negate", f"!({src(cond)})"))
        elif k == "ConditionalExpression":
            for cond in node.predicate.conditions:
                found.append((*rng(cond), "negate", f"!({src(cond)})"))
        elif k == "InvocationExpression":
            name = src(node.left).strip()
            if name == "$signed" and node.arguments is not None:
                args = node.arguments.parameters
                if len(args) == 1:
                    found.append((*rng(node), "sign", f"({src(args[0])})"))
        elif k == "ElementSelect" and node.selector is not None:
            sel = node.selector
            sk = sel.kind.name
            if sk == "BitSelect":
                e = src(sel.expr)
                for d in ("+", "-"):
                    found.append((*rng(sel.expr), "bitsel", f"({e}) {d} 1"))
            elif sk == "AscendingRangeSelect":
                e = src(sel.left)
                for d in ("+", "-"):
                    found.append((*rng(sel.left), "bitsel", f"({e}) {d} 1"))
        elif k in ("AssignmentExpression", "NonblockingAssignmentExpression"):
            rhs = src(node.right).strip()
            if not re.fullmatch(r"(\d+'[sS]?[dbh])?0+|\{[^{}]*\{1'b0\}\}", rhs):
                found.append((*rng(node.right), "stuck0", "0"))
            lhs = src(node.left).strip()
            if k == "NonblockingAssignmentExpression" and re.fullmatch(r"\w+", lhs) \
                    and rhs != lhs:
                found.append((*rng(node.right), "hold", lhs))
        return True

    tree.root.visit(visit)
    # `signed` keywords in declarations (not parameter ports): tokens, found by text
    signed = set()
    for m in re.finditer(r"\bsigned\b", text):
        a = m.start()
        if text[a - 1] != "$" and not _is_comment(text, a) and \
                not any(s <= a < e for s, e in hard):
            b = m.end() + (1 if text[m.end()] == " " else 0)
            found.append((a, b, "sign", ""))
            signed.add((a, b))
    out: list[Mutant] = []
    seen: set[tuple[int, int, str]] = set()
    for a, b, op, rep in sorted(found, key=lambda f: (f[0], f[1], f[2], f[3])):
        if ((a, b) not in signed and any(s <= a and b <= e for s, e in skip)) or \
                (a, b, rep) in seen:
            continue
        if text[a:b] == rep:
            continue
        seen.add((a, b, rep))
        line, col = _line_col(text, a)
        ls = text.rfind("\n", 0, a) + 1
        le = text.find("\n", a)
        base = f"{path.stem}:{line}:{col}:{op}"
        n = sum(1 for m in out if m.id.split(":k")[0] == base)
        raw = text[ls:le if le >= 0 else len(text)]
        lead = len(raw) - len(raw.lstrip())
        out.append(Mutant(id=base + (f":k{n}" if n else ""), file=path.name, line=line, col=col,
                          operator=op, original=text[a:b], replacement=rep, start=a, end=b,
                          line_text=raw.strip(), line_off=a - ls - lead))
    return out


def _is_comment(text: str, off: int) -> bool:
    ls = text.rfind("\n", 0, off) + 1
    return "//" in text[ls:off]


def enumerate_mutants(rtl_dir: str | Path, files: Iterable[str] | None = None) -> list[Mutant]:
    """Candidates over every ``*.v`` of ``rtl_dir`` (or the named files), sorted by file."""
    rtl_dir = Path(rtl_dir)
    names = sorted(files) if files is not None else sorted(p.name for p in rtl_dir.glob("*.v"))
    out: list[Mutant] = []
    for n in names:
        out += enumerate_file(rtl_dir / n)
    return out


def select_mutants(cands: Sequence[Mutant], count: int, seed: int = 1) -> list[Mutant]:
    """A deterministic, operator-stratified sample of ``count`` mutants (all if fewer).

    Each operator's candidates are shuffled with ``random.Random(seed)``; the sample takes one
    per operator in turn (so rare operators are represented), then returns file/offset order.
    """
    if count >= len(cands):
        return list(cands)
    rnd = random.Random(seed)
    by_op: dict[str, list[Mutant]] = {}
    for m in cands:
        by_op.setdefault(m.operator, []).append(m)
    for op in sorted(by_op):
        rnd.shuffle(by_op[op])
    pick: list[Mutant] = []
    while len(pick) < count:
        for op in sorted(by_op):
            if by_op[op] and len(pick) < count:
                pick.append(by_op[op].pop())
    order = {m.id: i for i, m in enumerate(cands)}
    return sorted(pick, key=lambda m: order[m.id])


def write_mutant_tree(mutant: Mutant | None, rtl_dir: str | Path, dst: str | Path) -> Path:
    """Copy every ``*.v`` of ``rtl_dir`` into ``dst`` with ``mutant`` applied; return ``dst``."""
    rtl_dir, dst = Path(rtl_dir), Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    for p in sorted(rtl_dir.glob("*.v")):
        text = p.read_text()
        if mutant is not None and p.name == mutant.file:
            text = mutant.apply(text)
        (dst / p.name).write_text(text)
    return dst


# ------------------------------------------------------------------------------------ waivers
@dataclass(frozen=True)
class Waiver:
    """A surviving mutant explained: matched by file, operator, line text and replacement."""

    file: str
    operator: str
    line_text: str
    original: str
    replacement: str
    kind: str      # "equivalent" or "unreachable"
    reason: str
    line_off: int | None = None  # where ``original`` starts in ``line_text`` (None: anywhere)

    def matches(self, m: Mutant) -> bool:
        return (m.file == self.file and m.operator == self.operator
                and m.line_text == self.line_text and m.original == self.original
                and m.replacement == self.replacement
                and (self.line_off is None or self.line_off == m.line_off))


_WAIVER_KEYS = ("file", "operator", "line_text", "original", "replacement", "kind", "reason")


def load_waivers(path: str | Path) -> list[Waiver]:
    """Read a mutation waiver file (YAML: ``waivers: [{file, operator, line_text, ...}]``;
    :func:`t2c_sim.closure.waivers.read_waiver_entries`). A missing file is no waivers.

    Raises:
        ConfigError: Malformed YAML, a missing key, an unknown ``kind`` or a ``line_off``
            outside ``line_text`` (names the file and the entry's key).
    """
    items = read_waiver_entries(path, "mutation waiver file", _WAIVER_KEYS,
                                ("equivalent", "unreachable"))
    out = []
    for i, w in enumerate(items):
        off = w.get("line_off")
        if off is not None and (not isinstance(off, int) or isinstance(off, bool) or off < 0
                                or off >= len(w["line_text"])):
            raise ConfigError("must be an offset into line_text", file=str(path),
                              key=f"waivers[{i}].line_off")
        out.append(Waiver(**{k: w[k] for k in _WAIVER_KEYS}, line_off=off))
    return out


def find_waiver(m: Mutant, waivers: Sequence[Waiver]) -> Waiver | None:
    """The first waiver matching ``m``, or None."""
    return next((w for w in waivers if w.matches(m)), None)
