"""Load a policy from a TOML file and ``SCRAPEWARDEN_*`` environment variables.

Everything that can go wrong is reported together as a :class:`PolicyError` whose lines read
like ``limits.per_account.profiles_per_day: must be > 0 (policy.toml line 14)``, so an operator
fixes all mistakes in one pass instead of one per restart.

Environment overrides name a policy key with ``__`` between levels:
``SCRAPEWARDEN_LIMITS__PER_ACCOUNT__PROFILES_PER_DAY=300``. Values are read as JSON when they
parse (numbers, booleans, lists, objects) and as plain strings otherwise; a key whose type is a
string always takes the raw text, so ``SCRAPEWARDEN_PRIVACY__KEY=123`` stays ``"123"``.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .core.policy import Policy
from .toml_lines import locate

ENV_PREFIX = "SCRAPEWARDEN_"
NON_POLICY_VARIABLES = frozenset(
    {"SCRAPEWARDEN_STATE", "SCRAPEWARDEN_POLICY", "SCRAPEWARDEN_LOG_LEVEL", "SCRAPEWARDEN_USER"}
    | {"SCRAPEWARDEN_SCREENSHOTS"}  # where the browser tests save the docs' screenshots
)
"""``SCRAPEWARDEN_*`` variables that configure the program, not the policy: never overrides."""

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_TOML_POSITION = re.compile(r"\(at line (\d+), column \d+\)")

Path_ = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class PolicyIssue:
    """One problem with a policy: which key, what is wrong, and where it came from."""

    key_path: str
    """Dotted path with list indices, e.g. ``protected[2].pattern``; empty for whole-file problems."""
    message: str
    line: int | None
    """1-based line in the file, when the problem has one."""
    source: str
    """The file name as given, or ``environment variable SCRAPEWARDEN_...``."""

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source} line {self.line}"
        what = f"{self.key_path}: {self.message}" if self.key_path else self.message
        return f"{what} ({where})" if where else what


class PolicyError(Exception):
    """The policy could not be loaded; ``issues`` lists every problem found."""

    def __init__(self, issues: Sequence[PolicyIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


# -- public API ------------------------------------------------------------------------------


def load_policy(path: str | Path, *, env: Mapping[str, str] | None = None) -> Policy:
    """Read the TOML policy at ``path``, apply environment overrides and validate it."""
    source = str(path)
    text = _read_text(Path(path), source)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError([_syntax_issue(exc, source)]) from None
    return _build(data, text, source, os.environ if env is None else env)


def policy_from_text(text: str, *, source: str = "draft", env: Mapping[str, str] | None = None) -> Policy:
    """:func:`load_policy` for TOML text not (yet) in a file, such as a draft on the dashboard."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError([_syntax_issue(exc, source)]) from None
    return _build(data, text, source, os.environ if env is None else env)


def policy_from_env(env: Mapping[str, str] | None = None) -> Policy:
    """The default policy with environment overrides applied, for running without a file."""
    return _build({}, "", "", os.environ if env is None else env)


def starter_policy_text() -> str:
    """The commented starter policy that ``scrapewarden init`` writes."""
    return (resources.files("scrapewarden") / "data" / "starter_policy.toml").read_text(encoding="utf-8")


def format_key_path(path: Sequence[str | int]) -> str:
    """``("protected", 2, "pattern")`` -> ``protected[2].pattern``; odd keys are quoted."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if _BARE_KEY.fullmatch(part) else json.dumps(part)
            out += f".{name}" if out else name
    return out


# -- reading ---------------------------------------------------------------------------------


def _read_text(path: Path, source: str) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PolicyError([PolicyIssue("", "policy file not found", None, source)]) from None
    except IsADirectoryError:
        raise PolicyError([PolicyIssue("", "is a directory, not a policy file", None, source)]) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise PolicyError([PolicyIssue("", f"cannot read policy file: {reason}", None, source)]) from None
    try:
        # utf-8-sig: editors on Windows like to start files with a byte-order mark.
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise PolicyError([PolicyIssue("", "not valid UTF-8 text", line, source)]) from None


def _syntax_issue(exc: tomllib.TOMLDecodeError, source: str) -> PolicyIssue:
    message = str(exc)
    line: int | None = getattr(exc, "lineno", None)  # Python 3.14+ exposes it directly.
    match = _TOML_POSITION.search(message)
    if match:
        line = line or int(match.group(1))
        message = message[: match.start()].rstrip()
    elif message.endswith("(at end of document)"):
        message = message.removesuffix("(at end of document)").rstrip() + " at end of file"
    message = message[:1].lower() + message[1:]
    return PolicyIssue("", f"invalid TOML: {message}", line, source)


# -- environment overrides -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Override:
    variable: str
    path: tuple[str, ...]
    value: Any


def _env_overrides(env: Mapping[str, str]) -> tuple[list[_Override], list[PolicyIssue]]:
    overrides: list[_Override] = []
    issues: list[PolicyIssue] = []
    for variable in sorted(env):
        if not variable.startswith(ENV_PREFIX) or variable in NON_POLICY_VARIABLES:
            continue
        source = f"environment variable {variable}"
        segments = variable[len(ENV_PREFIX) :].lower().split("__")
        path, problem, annotation = _resolve_env_path(segments)
        if problem:
            issues.append(PolicyIssue(format_key_path(path), problem, None, source))
            continue
        raw = env[variable]
        value: Any = raw
        if annotation is not str:
            try:
                value = json.loads(raw)
            except ValueError:
                value = raw  # Not JSON: a plain string, and validation says if that is wrong.
        overrides.append(_Override(variable, path, value))
    # Broad overrides first, so SCRAPEWARDEN_LIMITS__PER_IP__... refines SCRAPEWARDEN_LIMITS.
    overrides.sort(key=lambda item: (len(item.path), item.variable))
    return overrides, issues


def _resolve_env_path(segments: list[str]) -> tuple[tuple[str, ...], str, Any]:
    """Walk the Policy model along ``segments``: (path, problem or "", leaf annotation)."""
    model: type[BaseModel] | None = Policy
    path: tuple[str, ...] = ()
    annotation: Any = Policy
    for segment in segments:
        if model is None:
            whole = ENV_PREFIX + "__".join(p.upper() for p in path)
            return path, f"is not a table; set the whole value as JSON in {whole}", annotation
        if not segment:
            return path, "empty key in variable name (use __ only between keys)", annotation
        path = (*path, segment)
        field = model.model_fields.get(segment)
        if field is None:
            return path, _unknown_key_message(segment, model), annotation
        annotation = field.annotation
        model = annotation if _is_model(annotation) else None
    return path, "", annotation


def _apply(data: dict[str, Any], override: _Override) -> None:
    target = data
    for key in override.path[:-1]:
        child = target.get(key)
        if not isinstance(child, dict):
            child = target[key] = {}
        target = child
    last = override.path[-1]
    if isinstance(override.value, dict) and isinstance(target.get(last), dict):
        target[last] = _deep_merge(target[last], override.value)
    else:
        target[last] = override.value


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# -- validation and messages -----------------------------------------------------------------


def _build(data: dict[str, Any], text: str, source: str, env: Mapping[str, str]) -> Policy:
    overrides, issues = _env_overrides(env)
    for override in overrides:
        _apply(data, override)
    # Start from the defaults, so a table that sets one value keeps the others: writing only
    # [limits.per_ip] profiles_per_day must not make its other two budgets "required".
    data = _deep_merge(Policy().model_dump(), data)
    policy: Policy | None = None
    try:
        # Strict: TOML values are typed, so "300" for a number or "yes" for a flag is a
        # mistake worth reporting rather than a value to coerce.
        policy = Policy.model_validate(data, strict=True)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            issues.append(_issue_from_error(error, text, source, overrides))
    state = data.get("state")
    if isinstance(state, str) and state.strip():  # checked even when other keys are wrong
        issue = _state_issue(state, text, source)
        if issue is not None:
            issues.append(issue)
    if issues or policy is None:
        # Environment problems (no line) first, then the file's in reading order.
        issues.sort(key=lambda issue: -1 if issue.line is None else issue.line)
        raise PolicyError(issues)
    return policy


def _state_issue(url: str, text: str, source: str) -> PolicyIssue | None:
    """The ``state`` key's URL checked as the doors will open it (nothing is connected).
    The message shows the URL with its password masked, never the password."""
    from .state.errors import StateURLError
    from .state.url import check_state_url

    try:
        check_state_url(url)
    except StateURLError as exc:
        message = str(exc)
        return PolicyIssue(
            "state",
            message[:1].lower() + message[1:],
            locate(text, ("state",)) if text else None,
            source or "defaults",
        )
    return None


def _issue_from_error(
    error: Mapping[str, Any], text: str, source: str, overrides: Sequence[_Override]
) -> PolicyIssue:
    loc: Path_ = tuple(error["loc"])
    key_path = format_key_path(loc)
    message = _plain_message(error, loc)
    # An error inside or around what an environment variable set is blamed on that variable.
    blamed = [o.variable for o in overrides if loc[: len(o.path)] == o.path or o.path[: len(loc)] == loc]
    if blamed:
        variables = ", ".join(blamed)
        noun = "environment variable" if len(blamed) == 1 else "environment variables"
        return PolicyIssue(key_path, message, None, f"{noun} {variables}")
    line = locate(text, loc) if text else None
    return PolicyIssue(key_path, message, line, source or "defaults")


_TYPE_MESSAGES = {
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
    "missing": "required",
    "extra_forbidden": "unknown key",
    "finite_number": "must be a finite number",
}

_BOUND_MESSAGES = {
    "greater_than": ("gt", "must be > {}"),
    "greater_than_equal": ("ge", "must be >= {}"),
    "less_than": ("lt", "must be < {}"),
    "less_than_equal": ("le", "must be <= {}"),
    "string_too_short": ("min_length", "must be at least {} characters"),
    "string_too_long": ("max_length", "must be at most {} characters"),
    "too_short": ("min_length", "must have at least {} items"),
    "too_long": ("max_length", "must have at most {} items"),
}


def _plain_message(error: Mapping[str, Any], loc: Path_) -> str:
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden" and loc and isinstance(loc[-1], str):
        parent = _model_at(loc[:-1])
        if parent is not None:
            return _unknown_key_message(loc[-1], parent)
    if kind in _TYPE_MESSAGES:
        return _TYPE_MESSAGES[kind]
    if kind in _BOUND_MESSAGES:
        name, template = _BOUND_MESSAGES[kind]
        return template.format(ctx.get(name, "?"))
    if kind == "literal_error":
        return f"must be {ctx.get('expected', 'one of the allowed values')}"
    message = str(error.get("msg", "invalid value"))
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message[:1].lower() + message[1:]


def _unknown_key_message(key: str, model: type[BaseModel]) -> str:
    close = difflib.get_close_matches(key, list(model.model_fields), n=1, cutoff=0.6)
    return f"unknown key (did you mean {close[0]}?)" if close else "unknown key"


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _model_at(loc: Path_) -> type[BaseModel] | None:
    """The policy model class found at ``loc`` (following list items), or None."""
    annotation: Any = Policy
    for part in loc:
        if isinstance(part, int):
            if typing.get_origin(annotation) is not list:
                return None
            annotation = typing.get_args(annotation)[0]
            continue
        if not _is_model(annotation):
            return None
        field = annotation.model_fields.get(part)
        if field is None:
            return None
        annotation = field.annotation
    return annotation if _is_model(annotation) else None
