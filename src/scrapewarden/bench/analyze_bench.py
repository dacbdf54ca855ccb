"""`scrapewarden bench analyze`: speed, memory and detection quality of the log analyzer.

One run: generate the labelled log (:mod:`.access_log`, deterministic, not timed), then time
in turn, each as its own process with its peak memory taken from the kernel (``wait4``):

- ``scrapewarden analyze`` with full detection, JSON report written;
- GoAccess (statistics, no detection) on the same log, when installed;
- ``fail2ban-regex`` with a one-line filter on the first ``f2b_lines`` lines (it reads about
  5-10k lines/s; the whole log would take minutes), when installed.

Detection is scored per address against the generator's labels: an address counts as detected
when its verdict is ``scraper`` or ``suspicious``. People and verified crawlers are the
negatives. The same-run baseline is a per-address counter (``BASELINE_PER_MINUTE``), what a
fail2ban jail or a rate limiter keyed on the address flags.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .access_log import SCRAPER_KINDS

POLICY_TOML = """
[[protected]]
pattern = "/users/{id}"
kind = "profile"

[[protected]]
pattern = "/search"
query_param = "q"
kind = "search"
"""


def _measure(cmd: list[str]) -> dict[str, Any]:
    """Run ``cmd``; wall seconds, exit status and peak resident memory (MB) of that process.

    Peak memory comes from GNU time when installed: a child forked straight from this (large)
    Python process would report this process's resident pages as its own until it execs."""
    gnu_time = shutil.which("time") if Path("/usr/bin/time").exists() else None
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        full = [gnu_time, "-f", "%M", "-o", rss.name, *cmd] if gnu_time else cmd
        started = time.perf_counter()
        proc = subprocess.Popen(full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
        peak_kb = float(usage.ru_maxrss)
        if gnu_time:
            text = rss.read().strip().splitlines()
            peak_kb = float(text[-1]) if text and text[-1].isdigit() else peak_kb
    out: dict[str, Any] = {
        "seconds": round(seconds, 3),
        "exit": proc.returncode,
        "peak_rss_mb": round(peak_kb / 1024, 1),
    }
    if proc.returncode != 0:
        out["stderr_tail"] = err[-500:]
    return out


def score(
    verdicts: dict[str, str], labels: dict[str, str], groups: dict[str, str] | None = None
) -> dict[str, Any]:
    """Precision, recall and F1 over addresses, overall and per scraper kind.

    A person or crawler wrongly flagged counts against the kind of the actor it was reported
    in (a campaign or network of rotating or subnet scrapers); one flagged alone counts
    against every kind (nobody can tell which scraper it was "mistaken for"): per-kind
    precision is a lower bound."""
    groups = groups or {}
    flagged = {ip for ip, v in verdicts.items() if v in ("scraper", "suspicious")}
    negatives = {ip for ip, k in labels.items() if k in ("human", "verified_bot")}
    members: dict[str, list[str]] = {}
    for ip, group in groups.items():
        members.setdefault(group, []).append(ip)
    fp_by_kind: dict[str, int] = {}
    fp_alone = 0
    for ip in flagged & negatives:
        reported_with = members.get(groups.get(ip, ""), [])
        kinds = [labels.get(m, "") for m in reported_with if labels.get(m) in SCRAPER_KINDS]
        if kinds:
            kind = max(set(kinds), key=kinds.count)
            fp_by_kind[kind] = fp_by_kind.get(kind, 0) + 1
        else:
            fp_alone += 1
    fp = len(flagged & negatives)
    out: dict[str, Any] = {
        "false_positives": fp,
        "false_positives_alone": fp_alone,
        "negatives": len(negatives),
    }
    tp_all = pos_all = 0
    kinds_out: dict[str, Any] = {}
    for kind in SCRAPER_KINDS:
        of_kind = {ip for ip, k in labels.items() if k == kind}
        tp = len(of_kind & flagged)
        tp_all += tp
        pos_all += len(of_kind)
        wrong = fp_by_kind.get(kind, 0) + fp_alone
        precision = tp / (tp + wrong) if tp + wrong else 0.0
        recall = tp / len(of_kind) if of_kind else 0.0
        kinds_out[kind] = {
            "addresses": len(of_kind),
            "detected": tp,
            "false_positives": wrong,
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(2 * precision * recall / (precision + recall), 4) if precision + recall else 0.0,
        }
    precision = tp_all / (tp_all + fp) if tp_all + fp else 0.0
    recall = tp_all / pos_all if pos_all else 0.0
    out.update(
        precision=round(precision, 4),
        recall=round(recall, 4),
        f1=round(2 * precision * recall / (precision + recall), 4) if precision + recall else 0.0,
        kinds=kinds_out,
    )
    verified = [ip for ip, k in labels.items() if k == "verified_bot"]
    out["verified_crawlers_recognised"] = sum(verdicts.get(ip) == "verified_bot" for ip in verified)
    out["verified_crawlers"] = len(verified)
    return out


_GENERATE = """
import sys
from pathlib import Path
from scrapewarden.bench.access_log import LogSpec, write, write_labels
labels = write(LogSpec(int(sys.argv[1]), int(sys.argv[2])), Path(sys.argv[3]))
write_labels(labels, Path(sys.argv[4]))
"""
BASELINE_PER_MINUTE = 60
"""The baseline's rule: more than one request per second over a minute from one address (what
``limit_req rate=1r/s`` or a fail2ban jail with ``maxretry = 60, findtime = 60`` enforce)."""


def _per_ip_baseline(log: Path, labels: dict[str, str]) -> dict[str, Any]:
    """Flag an address when it exceeds ``BASELINE_PER_MINUTE`` requests in a calendar minute."""
    import duckdb

    limit = BASELINE_PER_MINUTE
    con = duckdb.connect()
    cols = "{'ip': 'VARCHAR', 'a': 'VARCHAR', 'b': 'VARCHAR', 't': 'VARCHAR'}"
    rows = con.execute(
        f"""
        SELECT ip FROM (
            SELECT ip, substr(t, 2, 17) AS minute, count(*) AS n
            FROM read_csv(?, delim=' ', quote='"', escape='\\', header=false, columns={cols},
                          strict_mode=false, auto_detect=false, ignore_errors=true)
            GROUP BY ALL
        ) GROUP BY ip HAVING max(n) > {limit}
        """,
        [str(log)],
    ).fetchall()
    verdicts = {ip: "human" for ip in labels}
    verdicts.update({r[0]: "scraper" for r in rows})
    return score(verdicts, labels)


def run(
    lines: int = 1_000_000,
    seed: int = 1,
    f2b_lines: int = 100_000,
    workdir: Path | None = None,
    progress: Callable[[str], None] = lambda _s: None,
) -> dict[str, Any]:
    tmp = Path(workdir or tempfile.mkdtemp(prefix="sw-bench-analyze-"))
    tmp.mkdir(parents=True, exist_ok=True)
    log = tmp / "access.log"
    progress(f"generating {lines:,} lines (seed {seed})…")
    # Generated in a child process: a benchmark parent holding the whole log in memory would
    # make every measured child look that big (fork copies the parent's resident pages).
    labels_path = tmp / "labels.json"
    subprocess.run(
        [
            sys.executable,
            "-c",
            _GENERATE,
            str(lines),
            str(seed),
            str(log),
            str(labels_path),
        ],
        check=True,
    )
    labels: dict[str, str] = json.loads(labels_path.read_text())
    n_lines = sum(1 for _ in log.open("rb"))
    policy = tmp / "policy.toml"
    policy.write_text(POLICY_TOML)
    report_path = tmp / "report.json"
    report: dict[str, Any] = {
        "lines": n_lines,
        "log_mb": round(log.stat().st_size / 1e6, 1),
        "seed": seed,
        "addresses": len(labels),
        "cores": os.cpu_count(),
    }

    progress("scrapewarden analyze…")
    sw = _measure(
        [
            sys.executable,
            "-c",
            "from scrapewarden.cli.main import main; main()",
            "analyze",
            str(log),
            "--policy",
            str(policy),
            "--json",
            str(report_path),
            "--top",
            "0",
        ]
    )
    if sw["exit"] != 0:
        raise RuntimeError(f"scrapewarden analyze failed: {sw.get('stderr_tail', '')}")
    result = json.loads(report_path.read_text())
    sw["lines_per_s"] = round(n_lines / sw["seconds"])
    sw["analysis_seconds"] = result["seconds"]
    sw["analysis_lines_per_s"] = round(n_lines / result["seconds"]) if result["seconds"] else None
    sw["bad_lines"] = result["bad_lines"]
    report["scrapewarden"] = sw

    verdicts: dict[str, str] = {ip: "human" for ip in labels}
    groups: dict[str, str] = {}
    for actor in result["actors"]:
        for ip in actor.get("addresses") or [actor["ip"]]:
            verdicts[ip] = actor["verdict"]
            groups[ip] = actor["id"]
    report["detection"] = score(verdicts, labels, groups)
    report["baseline_per_ip_limit"] = _per_ip_baseline(log, labels)

    if shutil.which("goaccess"):
        progress("goaccess…")
        ga = _measure(
            ["goaccess", str(log), "--log-format=COMBINED", "-o", str(tmp / "goaccess.json"), "--no-progress"]
        )
        ga["lines_per_s"] = round(n_lines / ga["seconds"])
        report["goaccess"] = ga
    else:
        report["goaccess"] = {"skipped": "goaccess not installed"}
    if shutil.which("fail2ban-regex"):
        progress(f"fail2ban-regex on the first {f2b_lines:,} lines…")
        sample = tmp / "f2b-sample.log"
        with log.open("rb") as src, sample.open("wb") as dst:
            for i, raw in enumerate(src):
                if i >= f2b_lines:
                    break
                dst.write(raw)
        f2b = _measure(["fail2ban-regex", str(sample), '^<HOST> -.*"(GET|POST|HEAD) '])
        f2b["lines"] = min(f2b_lines, n_lines)
        f2b["lines_per_s"] = round(f2b["lines"] / f2b["seconds"])
        report["fail2ban_regex"] = f2b
    else:
        report["fail2ban_regex"] = {"skipped": "fail2ban not installed"}

    ratios: dict[str, Any] = {}
    for name in ("goaccess", "fail2ban_regex"):
        other = report[name].get("lines_per_s")
        if other:
            ratios[f"lines_per_s_vs_{name}"] = round(sw["lines_per_s"] / other, 2)
    base_f1 = report["baseline_per_ip_limit"]["f1"]
    ratios["f1_vs_per_ip_limit"] = round(report["detection"]["f1"] / base_f1, 2) if base_f1 else None
    report["ratios"] = ratios
    report["workdir"] = str(tmp)
    return report
