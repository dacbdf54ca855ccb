"""The policy's path rules (protected records, assets, traps) as DuckDB SQL expressions.

Each expression must classify a path exactly as the live engine does (:class:`ResourceMatcher`,
the engine's asset test, trap paths); ``tests/logs/test_sql_rules.py`` checks them against it.
"""

from __future__ import annotations

import re

from ..core.detectors.budgets import SENSITIVITY_FACTOR
from ..core.policy import Policy, ProtectedResource

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def lit(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _path_regex(pattern: str) -> tuple[str, int]:
    """``/users/{id}`` -> (RE2 regex matching the whole path, number of groups)."""
    parts: list[str] = []
    pos = 0
    groups = 0
    for match in _PLACEHOLDER.finditer(pattern):
        parts.append(re.escape(pattern[pos : match.start()]))
        parts.append("([^/]+)")
        groups += 1
        pos = match.end()
    parts.append(re.escape(pattern[pos:]))
    return "^" + "".join(parts) + "/?$", groups


def _prefix(pattern: str) -> str:
    first = pattern.find("{")
    return pattern if first < 0 else pattern[:first]


def _resource_case(resource: ProtectedResource) -> tuple[str, str]:
    """(condition, record id expression) for one protected resource."""
    regex, groups = _path_regex(resource.pattern)
    methods = ", ".join(lit(m.upper()) for m in resource.methods)
    cond = (
        f"starts_with(path, {lit(_prefix(resource.pattern))}) "
        f"AND regexp_matches(path, {lit(regex)}) AND method IN ({methods})"
    )
    if resource.query_param:
        raw = f"regexp_extract(query, {lit('(?:^|&)' + re.escape(resource.query_param) + '=([^&]*)')}, 1)"
        value = f"left(lower(trim(url_decode(replace({raw}, '+', ' ')))), 200)"
        cond += f" AND {raw} <> ''"
        return cond, value
    raw = f"regexp_extract(path, {lit(regex)}, {groups})" if groups else "path"
    value = (
        f"left(CASE WHEN strpos({raw}, '%') > 0 OR strpos({raw}, '+') > 0 "
        f"THEN url_decode(replace({raw}, '+', ' ')) ELSE {raw} END, 200)"
    )
    return cond, value


def record_columns(policy: Policy) -> str:
    """SQL select items ``ridx`` (which protected resource, 1-based), ``rkind``, ``rid`` and
    ``rfactor`` (sensitivity weight). Each rule's regular expression runs once per row, and only
    on paths that start with the rule's literal prefix."""
    if not policy.protected:
        return "NULL::UTINYINT AS ridx, NULL::VARCHAR AS rkind, NULL::VARCHAR AS rid, NULL::DOUBLE AS rfactor"
    conds, ids = [], []
    for i, resource in enumerate(policy.protected, start=1):
        cond, value = _resource_case(resource)
        conds.append(f"WHEN {cond} THEN {i}")
        ids.append(f"WHEN {i} THEN {value}")
    kinds = "[" + ", ".join(lit(r.kind) for r in policy.protected) + "]"
    factors = "[" + ", ".join(str(SENSITIVITY_FACTOR.get(r.sensitivity, 1.0)) for r in policy.protected) + "]"
    return (
        f"(CASE {' '.join(conds)} END)::UTINYINT AS ridx, "
        f"{kinds}[ridx] AS rkind, CASE ridx {' '.join(ids)} END AS rid, {factors}[ridx]::DOUBLE AS rfactor"
    )


def asset_condition(policy: Policy) -> str:
    """SQL boolean: the path is an asset (CSS, script, image...), as the live engine decides."""
    terms = [f"starts_with(path, {lit(p)})" for p in policy.client.asset_prefixes]
    terms += [f"ends_with(path, {lit(s)})" for s in policy.client.asset_suffixes]
    return "(" + " OR ".join(terms) + ")" if terms else "false"


def trap_condition(policy: Policy) -> str:
    if not policy.traps.paths:
        return "false"
    return "path IN (" + ", ".join(lit(p) for p in policy.traps.paths) + ")"


def allow_path_condition(policy: Policy) -> str:
    if not policy.allow.paths:
        return "false"
    return "path IN (" + ", ".join(lit(p) for p in policy.allow.paths) + ")"
