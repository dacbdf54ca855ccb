"""The seam between deciding and counting: begin → observe (any counter store) → finish.

A shared counter store (Redis) answers with plain snapshots instead of the engine's own
``ActorState`` objects; these tests make sure the engine judges both the same, request by
request, over mixed traffic.
"""

import random

from scrapewarden.core.counters import CountsSnapshot, Observation
from scrapewarden.core.decision import Action, Decision
from scrapewarden.core.engine import Engine, Pending
from scrapewarden.core.facts import RequestFacts
from scrapewarden.core.policy import Policy, ProtectedResource

T0 = 1_800_000_000.0
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"
)


def policy() -> Policy:
    return Policy(
        protected=[ProtectedResource(pattern="/users/{id}")],
        traps={"paths": ["/.trap"]},
        limits={"per_ip": {"requests_per_minute": 120, "profiles_per_hour": 60, "profiles_per_day": 200}},
    )


def traffic(n: int, seed: int) -> list[RequestFacts]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        now = T0 + i * 0.05
        who = rng.random()
        if who < 0.4:  # a sequential walker on one address
            ip, path, ua = "203.0.113.9", f"/users/{i}", "python-requests/2.31"
        elif who < 0.6:  # rotating addresses, one client build
            ip, path, ua = f"198.51.100.{rng.randrange(1, 250)}", f"/users/{rng.randrange(10_000)}", CHROME
        elif who < 0.65:
            ip, path, ua = "192.0.2.77", "/.trap", CHROME
        else:  # people: pages and their assets
            ip = f"10.{rng.randrange(4)}.0.{rng.randrange(1, 20)}"
            path = rng.choice(["/", "/static/app.css", f"/users/{rng.randrange(50)}", "/static/app.js"])
            ua = CHROME
        headers = (("user-agent", ua), ("accept", "text/html"), ("accept-language", "en"))
        out.append(RequestFacts(now=now, ip=ip, path=path, user_agent=ua, headers=headers))
    return out


def test_snapshots_from_another_store_are_judged_like_the_engines_own_counters() -> None:
    own, seam = Engine(policy()), Engine(policy())
    actions = set()
    for facts in traffic(3000, seed=5):
        expected = own.decide(facts)
        step = seam.begin(facts)
        if isinstance(step, Decision):
            got = step
        else:
            # As a shared store would: count, then answer with plain values.
            counted = [CountsSnapshot.of(state) for state in seam.observe(step)]
            got = seam.finish(step, counted)
        assert (got.action, round(got.score, 6)) == (expected.action, round(expected.score, 6)), facts.path
        assert sorted(e.detector for e in got.evidence) == sorted(e.detector for e in expected.evidence)
        actions.add(got.action)
    # The traffic reached every kind of answer, so the comparison covered the detectors.
    assert {Action.ALLOW, Action.BLOCK} <= actions and len(actions) >= 3


def test_begin_settles_what_needs_no_counters() -> None:
    engine = Engine(Policy(allow={"paths": ["/robots.txt"]}))
    settled = engine.begin(RequestFacts(now=T0, ip="203.0.113.1", path="/robots.txt", user_agent="x"))
    assert isinstance(settled, Decision) and settled.action is Action.ALLOW
    engine.bans.add("ip", "203.0.113.2", T0 + 60)
    banned = engine.begin(RequestFacts(now=T0, ip="203.0.113.2", path="/", user_agent="x"))
    assert isinstance(banned, Decision) and banned.action is Action.BLOCK


def test_begin_describes_what_to_count_for_which_actors() -> None:
    engine = Engine(policy())
    step = engine.begin(RequestFacts(now=T0, ip="203.0.113.3", path="/users/42", user_agent=CHROME))
    assert isinstance(step, Pending)
    assert [kind for kind, _ in step.actors] == ["ip", "fingerprint"]
    obs = step.observation
    assert isinstance(obs, Observation)
    assert (obs.now, obs.asset, obs.page, obs.trap, obs.record_kind, obs.record_id) == (
        T0,
        False,
        True,
        False,
        "profile",
        "42",
    )
    assert obs.record != 0
    # Nothing was counted yet: begin only describes.
    assert engine.actor("ip", "203.0.113.3") is None


def refused(i: int) -> RequestFacts:
    """A request the default policy refuses: a scripted client on a trap path."""
    ua = "python-requests/2.31"
    return RequestFacts(
        now=T0 + i, ip="203.0.113.66", path="/.trap", user_agent=ua, headers=(("user-agent", ua),)
    )


def test_offences_counted_elsewhere_ban_after_as_many_refusals_as_counted_here() -> None:
    """finish(count_offences=False) leaves the offences to the caller; counted by any store
    that answers with the sliding count, the ban falls due on the same request."""
    p = Policy(traps={"paths": ["/.trap"]}, actions={"bans": {"blocks_before_ban": 4}})
    own, seam = Engine(p), Engine(p)
    outside: dict[tuple[str, str], int] = {}  # a stand-in store: plain counts, reset when due
    banned_at = None
    for i in range(12):
        expected = own.decide(refused(i))
        step = seam.begin(refused(i))
        if isinstance(step, Decision):
            got = step
        else:
            got = seam.finish(step, seam.observe(step), count_offences=False)
            assert got.new_bans == [] and got.offences
            counts = []
            for actor in got.offences:
                outside[actor] = outside.get(actor, 0) + 1
                counts.append(float(outside[actor]))
                if outside[actor] >= 4:
                    outside[actor] = 0
            got.new_bans = seam.offences_counted(got.offences, counts, step.facts.now)
        assert (got.action, got.new_bans) == (expected.action, expected.new_bans), i
        if got.new_bans and banned_at is None:
            banned_at = i
    assert banned_at == 3  # the fourth refusal
    assert got.ban_key == "ip:203.0.113.66"  # and from then on the ban answers


def test_a_network_marked_shared_elsewhere_is_counted_from_the_next_request() -> None:
    engine = Engine(policy())
    step = engine.begin(RequestFacts(now=T0, ip="198.51.100.7", path="/users/1", user_agent=CHROME))
    assert isinstance(step, Pending) and step.network == "198.51.100.0/24" and not step.network_counted
    assert "network" not in [kind for kind, _ in step.actors]
    engine.network_shared("198.51.100.0/24")
    step = engine.begin(RequestFacts(now=T0 + 1, ip="198.51.100.7", path="/users/2", user_agent=CHROME))
    assert isinstance(step, Pending) and step.network_counted
    assert ("network", "198.51.100.0/24") in step.actors


def test_the_site_asset_tally_takes_the_shared_total() -> None:
    from scrapewarden.core.engine import SITE_ASSETS_MIN

    engine = Engine(policy())
    assert not engine.site_assets_known
    engine.note_site_assets(SITE_ASSETS_MIN - 1)
    assert not engine.site_assets_known
    engine.decide(RequestFacts(now=T0, ip="192.0.2.1", path="/static/app.css", user_agent=CHROME))
    assert engine.site_assets_known
    engine.note_site_assets(3)  # a smaller total never lowers it
    assert engine.site_assets_known
