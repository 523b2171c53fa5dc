"""Reading JSON files with errors that point at the file, line and column.

Python's `json` module accepts two things a data file must not contain, and reports syntax
errors in terms a user has to decode. `read_json` closes both gaps:

* NaN / Infinity literals are refused (they are not JSON, and no scorer accepts them);
* a key repeated inside one object is refused (`json` silently keeps the last value, which
  would e.g. drop a user's first block of images without a word);
* arrays and objects nested more than `MAX_DEPTH` levels deep are refused (past about 1,000
  levels `json` itself crashes with RecursionError, and code that walks the parsed values,
  such as a model spec's, crashes well before);
* a string holding a lone surrogate escape (``"\\ud800"``, half of a UTF-16 pair) is refused: it
  parses into a Python str that cannot be written as UTF-8, so printing or saving it crashes;
* syntax errors carry the line and column and, for the usual hand-editing slips (missing or
  trailing comma, empty file), a hint; a file that stops in the middle of the document (a
  truncated download or copy) is reported as such, with its size, instead of as the syntax
  error the parser happens to meet at the cut.

The checks cost almost nothing on valid files (the depth check is one pass over the parsed
arrays and objects, 2-7 ms per MB of the real files): the slow work (locating the offending
token in the text) only happens once an error is known to exist.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ltr.errors import DataError, quoted
from ltr.fileio import read_text

#: Tokens the locator needs: strings (skipped as a whole, so their content is never mistaken
#: for structure), structural characters, and the non-JSON constants.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]:,]|-?Infinity|NaN')


#: The deepest nesting of arrays and objects a JSON input may have. The data files need 6 at most
#: (the research split file: split, subset, user, photo, concept, confidences); the limit stays
#: far below Python's recursion limit (1,000), which the parser and what walks its result share.
MAX_DEPTH = 100


class _TooDeep(ValueError):
    pass


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether `value` nests arrays/objects more than `limit` levels deep (no recursion)."""
    if type(value) is not dict and type(value) is not list:
        return False
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for child in node.values() if type(node) is dict else node:
            if type(child) is dict or type(child) is list:
                stack.append((child, depth + 1))
    return False


def _too_deep_at(text: str, limit: int) -> int | None:
    """Offset of the bracket that opens nesting level `limit` + 1 (strings skipped), or None;
    on the error path only."""
    depth = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token in "{[":
            depth += 1
            if depth > limit:
                return match.start()
        elif token in "}]":
            depth -= 1
    return None


#: A \u escape of a UTF-16 surrogate (D800-DFFF): in a valid file only as half of a pair (an
#: emoji such as \ud83d\ude00); its mere presence makes the (rare) full check worthwhile.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_COLON = re.compile(r"\s*:")


class _LoneSurrogate(ValueError):
    pass


def _is_unicode(value: Any) -> bool:
    """Whether every string (and key) in a parsed value can be written as UTF-8."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _lone_surrogate(text: str) -> tuple[str, int] | None:
    """The problem and offset of the first string holding a lone surrogate; on the error path
    only, on text known to be valid JSON (so strings are matched from their opening quote)."""
    for match in _STRING.finditer(text):
        token = match.group()
        if not _SURROGATE_ESCAPE.search(token):
            continue
        value = json.loads(token)
        lone = next((c for c in value if "\ud800" <= c <= "\udfff"), None)
        if lone is None:
            continue
        kind = "key" if _COLON.match(text, match.end()) else "string"
        return (
            f"invalid JSON: the {kind} {quoted(value)} is not valid Unicode text "
            f"(\\u{ord(lone):04x} is half of a UTF-16 surrogate pair, without its other half)",
            match.start(),
        )
    return None


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class _Constant(ValueError):
    pass


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


def _reject_constant(name: str) -> Any:
    raise _Constant(name)


def json_path(parts: list[str | int]) -> str:
    """``['u1']['img3'][0]``: where a value sits inside a JSON document."""
    return "".join(f"[{p!r}]" for p in parts) or "top level"


def _walk(text: str) -> Iterator[tuple[str, str, int, list[str | int]]]:
    """Yield (kind, token, offset, path) for keys and constants, tracking the JSON path.

    A small tokenizer used on the error path only, on text already known to be well-formed
    apart from the offending token.
    """
    stack: list[list[Any]] = []  # [kind, key-or-index, keys seen, expecting a key]
    for match in _TOKEN.finditer(text):
        token = match.group()
        top = stack[-1] if stack else None
        if token in "{[":
            stack.append(["obj", None, set(), True] if token == "{" else ["arr", 0, None, False])
        elif token in "}]":
            if stack:
                stack.pop()
        elif token == ",":
            if top is not None and top[0] == "arr":
                top[1] += 1
            elif top is not None:
                top[3] = True
        elif token == ":":
            continue
        elif token.startswith('"'):
            if top is not None and top[0] == "obj" and top[3]:
                key = json.loads(token)
                path = [frame[1] for frame in stack[:-1]]
                yield ("duplicate" if key in top[2] else "key", key, match.start(), path)
                top[2].add(key)
                top[1], top[3] = key, False
        else:
            yield ("constant", token, match.start(), [frame[1] for frame in stack])


class _LongInteger(ValueError):
    def __init__(self, message: str, line: int | None, column: int | None) -> None:
        super().__init__(message)
        self.line, self.column = line, column


#: An integer (not a fraction or exponent) of more digits than Python converts by default
#: (4300); strings are matched as a whole so their content is skipped.
_LONG_INTEGER = re.compile(r'"(?:[^"\\]|\\.)*"|(?<![0-9.eE+-])-?[0-9]{4301,}(?![.eE])')


def _long_integer(text: str) -> _LongInteger:
    """The error for the integer `json` refused to convert (too many digits), located."""
    for match in _LONG_INTEGER.finditer(text):
        if not match.group().startswith('"'):
            line, column = _line_column(text, match.start())
            digits = len(match.group().lstrip("-"))
            return _LongInteger(
                f"invalid JSON: a number of {digits:,} digits (no data file needs more than a "
                "few dozen; the file is probably corrupt)",
                line,
                column,
            )
    return _LongInteger("invalid JSON: a number too long to read", None, None)


def _line_column(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _syntax_hint(text: str, exc: json.JSONDecodeError) -> str:
    before = text[: exc.pos].rstrip()
    here = text[exc.pos : exc.pos + 1]
    if exc.msg == "Expecting ',' delimiter":
        return " (a comma is probably missing after the previous value)"
    if before.endswith(",") and here in "}]" and here:
        return f" (trailing comma before {here!r})"
    return ""


#: What may follow the position of a syntax error when the text simply stops there: the start
#: of a number's fraction or exponent, or of a literal (true, false, null).
_CUT_AFTER_DIGIT = re.compile(r"\.|[eE][+-]?")
_CUT_VALUE = re.compile(r"-|t(?:r(?:u)?)?|f(?:a(?:l(?:s)?)?)?|n(?:u(?:l)?)?")
_CUT_ESCAPE = re.compile(r"u[0-9a-fA-F]{0,4}")


def _open_brackets(text: str) -> int:
    """Objects and arrays opened but not closed (strings skipped); on the error path only."""
    depth = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        depth += (token in "{[") - (token in "}]")
    return depth


def _ends_early(text: str, exc: json.JSONDecodeError) -> str | None:
    """How the text stops, if the syntax error is the end of the file coming too soon (a
    truncated file), else None.

    The parser fails at the end of a truncated file, or a few characters before it when the
    cut falls inside a token (``tru``, ``1.``, ``\\u00``), with objects or arrays still open.
    """
    rest = text[exc.pos :].rstrip()
    if exc.msg.startswith("Unterminated string") or (
        exc.msg.startswith("Invalid \\uXXXX escape") and _CUT_ESCAPE.fullmatch(rest)
    ):
        return "it stops inside a string"
    if rest and exc.msg == "Expecting value":
        cut = _CUT_VALUE.fullmatch(rest) is not None
    elif rest and exc.msg == "Expecting ',' delimiter":
        cut = text[exc.pos - 1 : exc.pos].isdigit() and _CUT_AFTER_DIGIT.fullmatch(rest) is not None
    else:
        cut = not rest
    if not cut:
        return None
    depth = _open_brackets(text)
    if depth <= 0:
        return None
    return f"{depth} object(s)/array(s) still open"


def _size(path: Path, text: str) -> int:
    try:
        return path.stat().st_size
    except OSError:  # gone since it was read: the size of what was read
        return len(text.encode("utf-8", "surrogatepass"))


def read_json(path: str | Path, *, error: type[DataError] = DataError) -> Any:
    """Parse `path` as JSON; a problem names the file, line, column and what is wrong.

    NaN/Infinity literals and keys repeated within one object are rejected too. A UTF-8 byte
    order mark is accepted (some editors add one).
    """
    path = Path(path)
    text = read_text(path, error)
    if not text.strip():
        raise error(path, "file is empty (expected a JSON document)")

    try:
        try:
            value = json.loads(
                text, parse_constant=_reject_constant, object_pairs_hook=_unique_object
            )
        except (json.JSONDecodeError, _Constant, _DuplicateKey):
            raise
        except ValueError:  # an integer longer than Python converts (sys.get_int_max_str_digits)
            raise _long_integer(text) from None
        except RecursionError:  # nested deeper than the parser can go
            raise _TooDeep() from None
        if _deeper_than(value, MAX_DEPTH):
            raise _TooDeep()
        if _SURROGATE_ESCAPE.search(text) and not _is_unicode(value):
            raise _LoneSurrogate()
        return value
    except _LoneSurrogate:
        found = _lone_surrogate(text)
        if found is None:
            raise error(path, "invalid JSON: a string is not valid Unicode text") from None
        line, column = _line_column(text, found[1])
        raise error(path, found[0], line=line, column=column) from None
    except _TooDeep:
        deep = _too_deep_at(text, MAX_DEPTH)
        position = _line_column(text, deep) if deep is not None else (None, None)
        raise error(
            path,
            f"invalid JSON: arrays/objects nested too deeply (more than {MAX_DEPTH} levels; "
            "no input of ltr needs more than a few)",
            line=position[0],
            column=position[1],
        ) from None
    except json.JSONDecodeError as exc:
        how = _ends_early(text, exc)
        if how is not None:
            problem = (
                "invalid JSON: the file ends early, probably truncated "
                f"({_size(path, text):,} bytes; {how})"
            )
        else:
            problem = f"invalid JSON: {exc.msg}{_syntax_hint(text, exc)}"
        raise error(path, problem, line=exc.lineno, column=exc.colno) from None
    except _Constant as exc:
        for kind, token, offset, where in _walk(text):
            if kind == "constant":
                line, column = _line_column(text, offset)
                raise error(
                    path,
                    f"invalid JSON: {token} is not a number in JSON (use a finite number)",
                    record=f"value at {json_path(where)}",
                    line=line,
                    column=column,
                ) from None
        raise error(path, f"invalid JSON: {exc} is not a number in JSON") from None
    except _LongInteger as exc:
        raise error(path, str(exc), line=exc.line, column=exc.column) from None
    except _DuplicateKey as exc:
        for kind, key, offset, where in _walk(text):
            if kind == "duplicate" and key == exc.key:
                line, column = _line_column(text, offset)
                raise error(
                    path,
                    f"key {key!r} appears twice in the same object "
                    "(JSON keeps only the last value, so data would be lost silently)",
                    record=f"object at {json_path(where)}",
                    line=line,
                    column=column,
                ) from None
        raise error(path, f"key {exc.key!r} appears twice in the same object") from None
