"""The audit chain: every kind of tampering is found and the first broken entry named."""

from __future__ import annotations

import dataclasses

import pytest

from scrapewarden.core.audit import GENESIS, AuditEntry, AuditRecord, chain, entry_hash, verify

NOW = 1_700_000_000.0


def build(n: int) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    for i in range(n):
        entries.append(
            chain(
                AuditRecord(NOW + i, "alice", "ban.add", f"ip:203.0.113.{i}", {"i": i}),
                entries[-1] if entries else None,
            )
        )
    return entries


def test_an_intact_chain_verifies_and_reports_its_head() -> None:
    entries = build(5)
    result = verify(entries)
    assert (result.ok, result.verified, result.head, result.head_seq) == (True, 5, entries[-1].hash, 5)
    assert verify([]).ok and verify([]).head == GENESIS


def test_the_hash_covers_every_field() -> None:
    (e,) = build(1)
    for name, value in [
        ("ts", NOW + 0.001),
        ("actor", "mallory"),
        ("action", "ban.remove"),
        ("target", "ip:203.0.113.99"),
        ("details_json", '{"i":1}'),
        ("prev_hash", "1" * 64),
        ("seq", 2),
    ]:
        changed = dataclasses.replace(e, **{name: value})  # type: ignore[arg-type]
        fields = (
            changed.seq,
            changed.ts,
            changed.actor,
            changed.action,
            changed.target,
            changed.details_json,
        )
        assert entry_hash(*fields, changed.prev_hash) != e.hash, name


def test_an_altered_entry_is_named() -> None:
    entries = build(5)
    entries[2] = dataclasses.replace(entries[2], target="ip:198.51.100.1")
    result = verify(entries)
    assert (result.ok, result.broken_seq, result.verified) == (False, 3, 2)
    assert "entry 3 was altered" in result.problem


def test_an_altered_entry_with_a_recomputed_hash_breaks_the_next_link() -> None:
    entries = build(5)
    e = dataclasses.replace(entries[2], actor="mallory")
    entries[2] = dataclasses.replace(
        e, hash=entry_hash(e.seq, e.ts, e.actor, e.action, e.target, e.details_json, e.prev_hash)
    )
    result = verify(entries)
    assert result.broken_seq == 4 and "does not link" in result.problem


def test_a_removed_entry_is_named() -> None:
    entries = build(5)
    del entries[1]
    result = verify(entries)
    assert result.broken_seq == 2 and "entry 2 is missing" in result.problem


def test_reordered_entries_are_found() -> None:
    entries = build(5)
    entries[1], entries[2] = entries[2], entries[1]
    result = verify(entries)
    assert result.broken_seq == 2 and not result.ok


def test_entries_cut_off_the_end_are_found_against_the_recorded_head() -> None:
    entries = build(5)
    head = (5, entries[-1].hash)
    assert verify(entries, recorded_head=head).ok
    result = verify(entries[:3], recorded_head=head)
    assert result.broken_seq == 4 and "missing from the end" in result.problem
    # A head newer than the chain read (an append in between) is fine when the chain holds it.
    assert verify(entries, recorded_head=(3, entries[2].hash)).ok
    assert verify(entries, recorded_head=(3, "f" * 64)).broken_seq == 3


def test_a_rewritten_chain_loses_the_anchor() -> None:
    entries = build(5)
    anchor = entries[3].hash
    assert verify(entries, expect_head=anchor).ok
    # The attacker rewrites everything from entry 2 on, consistently: only the anchor tells.
    forged = entries[:1]
    for e in entries[1:]:
        forged.append(chain(AuditRecord(e.ts, "mallory", e.action, e.target, {}), forged[-1]))
    assert verify(forged).ok
    result = verify(forged, expect_head=anchor)
    assert not result.ok and "expected head" in result.problem
    assert not verify(entries[:3], expect_head=anchor).ok  # cut short before the anchor


def test_details_must_be_json() -> None:
    with pytest.raises(ValueError):
        chain(AuditRecord(NOW, "a", "b", "c", {"x": float("nan")}), None)
    with pytest.raises(ValueError):
        chain(AuditRecord(NOW, "a", "b", "c", {"x": {1, 2}}), None)


def test_json_round_trip() -> None:
    (e,) = build(1)
    assert AuditEntry.from_json(e.to_json()) == e
    assert e.as_dict()["details"] == {"i": 0}
