"""Engine behaviour end to end on facts: no HTTP here (see tests/doors for that)."""

import random

import pytest

from scrapewarden.core.decision import Action
from scrapewarden.core.engine import Engine
from scrapewarden.core.facts import RequestFacts
from scrapewarden.core.policy import Partner, Policy, ProtectedResource

T0 = 1_800_000_000.0
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"
)
BROWSER_HEADERS = (
    ("host", "site.example"),
    ("user-agent", CHROME),
    ("accept", "text/html,application/xhtml+xml"),
    ("accept-language", "en-GB,en;q=0.9"),
    ("accept-encoding", "gzip, deflate, br"),
)


def policy(**kw):
    return Policy(protected=[ProtectedResource(pattern="/users/{id}")], **kw)


def facts(now, ip="198.51.100.7", path="/", **kw):
    kw.setdefault("headers", BROWSER_HEADERS)
    kw.setdefault("user_agent", CHROME)
    return RequestFacts(now=now, ip=ip, path=path, **kw)


def first_action(engine, requests):
    for n, f in enumerate(requests, 1):
        d = engine.decide(f)
        if d.action is not Action.ALLOW:
            return n, d
    return None, None


def test_sequential_walk_from_one_address_is_refused_early():
    engine = Engine(policy())
    n, d = first_action(engine, (facts(T0 + i, path=f"/users/{i}") for i in range(1, 5001)))
    assert n is not None and n <= 50
    assert d.action >= Action.CHALLENGE
    assert any(e.detector == "enumeration" for e in d.evidence)


def test_random_order_walk_from_one_address_hits_the_address_budget():
    engine = Engine(policy())
    ids = random.Random(5).sample(range(1, 1_000_000), 5000)
    n, d = first_action(engine, (facts(T0 + i * 2, path=f"/users/{x}") for i, x in enumerate(ids)))
    budget = Policy().limits.per_ip.profiles_per_hour
    assert n is not None and n <= budget * 1.05
    assert any(e.detector == "breadth" for e in d.evidence)


def test_account_budget_applies_across_addresses():
    engine = Engine(policy())
    ids = random.Random(9).sample(range(1, 1_000_000), 1000)
    reqs = (
        facts(T0 + i * 3, ip=f"203.0.{i % 200}.{i % 250 + 1}", path=f"/users/{x}", account_id="acct-1")
        for i, x in enumerate(ids)
    )
    n, d = first_action(engine, reqs)
    # Past 48 records the distinct count is a HyperLogLog: budgets hold to within its ~3 % error.
    assert n is not None and n <= Policy().limits.per_account.profiles_per_hour * 1.05
    assert any(e.actor == "account" for e in d.evidence)


def test_person_clicking_twenty_profiles_is_never_bothered():
    engine = Engine(policy())
    rng = random.Random(11)
    now = T0
    for _ in range(20):
        now += rng.lognormvariate(2.5, 0.8)
        for asset in ("/static/app.css", "/static/app.js"):
            engine.decide(facts(now, path=asset, session_id="sess-1", account_id="alice"))
        d = engine.decide(
            facts(now, path=f"/users/{rng.randint(1, 20000)}", session_id="sess-1", account_id="alice")
        )
        assert d.action is Action.ALLOW, d.reasons()


def test_new_account_looking_people_up_fast_is_stopped():
    engine = Engine(policy())
    created = T0 - 120  # signed up two minutes ago
    ids = random.Random(2).sample(range(1, 100000), 200)
    n, d = first_action(
        engine,
        (
            facts(T0 + i * 2, path=f"/users/{x}", account_id="fresh", account_created=created, session_id="s")
            for i, x in enumerate(ids)
        ),
    )
    assert n is not None and n < 100
    assert any(e.detector == "new_account" for e in d.evidence)


def test_old_account_at_the_same_pace_is_not_flagged_as_new():
    engine = Engine(policy())
    ids = random.Random(2).sample(range(1, 100000), 30)
    for i, x in enumerate(ids):
        d = engine.decide(
            facts(
                T0 + i * 2,
                path=f"/users/{x}",
                account_id="old",
                account_created=T0 - 400 * 86400,
                session_id="s2",
            )
        )
        assert not any(e.detector == "new_account" for e in d.evidence)


def test_observe_mode_reports_but_does_not_enforce():
    engine = Engine(policy(mode="observe"))
    _, d = first_action(engine, (facts(T0 + i, path=f"/users/{i}") for i in range(1, 200)))
    assert d is not None and d.action >= Action.CHALLENGE
    assert d.enforced is False and d.effective is Action.ALLOW
    assert d.new_bans == []


def test_repeated_refusals_request_a_ban_and_bans_block():
    engine = Engine(policy())
    due = []
    for i in range(1, 400):
        d = engine.decide(facts(T0 + i, path=f"/users/{i}"))
        if d.new_bans:
            due = d.new_bans
            break
    assert ("ip", "198.51.100.7") in due
    engine.bans.add("ip", "198.51.100.7", T0 + 1000)
    d = engine.decide(facts(T0 + 500, path="/"))
    assert d.action is Action.BLOCK and d.ban_key == "ip:198.51.100.7"
    assert engine.decide(facts(T0 + 1001, path="/")).action is Action.ALLOW  # expired


def test_network_ban_covers_addresses_inside():
    engine = Engine(policy())
    engine.bans.add("network", "192.0.2.0/24", None)
    assert engine.decide(facts(T0, ip="192.0.2.77")).action is Action.BLOCK
    assert engine.decide(facts(T0, ip="192.0.3.77")).action is Action.ALLOW


def test_trap_path_blocks_and_is_remembered():
    engine = Engine(policy())
    assert engine.decide(facts(T0, path="/.sw/trap")).action is Action.BLOCK
    assert engine.decide(facts(T0 + 60, path="/")).action is Action.BLOCK
    assert engine.decide(facts(T0 + 60, ip="198.51.100.8", path="/")).action is Action.ALLOW


def test_rate_limit_per_address():
    engine = Engine(policy())
    limit = Policy().limits.per_ip.requests_per_minute
    n, d = first_action(engine, (facts(T0 + i * 0.01, path="/feed") for i in range(limit * 3)))
    assert n is not None and limit * 0.7 < n <= limit + 1
    assert d.action is Action.THROTTLE and d.retry_after > 0


def test_partner_quota_throttles_only_past_contract():
    import hashlib

    key = "partner-secret-key"
    partner = Partner(
        name="lab",
        key_sha256=hashlib.sha256(key.encode()).hexdigest(),
        requests_per_hour=50,
        records_per_day=1000,
    )
    engine = Engine(policy(identity={"partners": [partner]}))
    actions = [engine.decide(facts(T0 + i, path=f"/users/{i}", api_key=key)).action for i in range(1, 60)]
    assert set(actions[:50]) == {Action.ALLOW}  # sequential ids are fine for a contracted partner
    assert actions[55] is Action.THROTTLE


@pytest.mark.parametrize("sensitivity,expected_faster", [(3, True), (1, False)])
def test_sensitivity_scales_budgets(sensitivity, expected_faster):
    normal = Engine(policy())
    scaled = Engine(Policy(protected=[ProtectedResource(pattern="/users/{id}", sensitivity=sensitivity)]))
    ids = random.Random(1).sample(range(1, 10**6), 3000)

    def run(engine):
        return first_action(engine, (facts(T0 + i * 2, path=f"/users/{x}") for i, x in enumerate(ids)))[0]

    assert (run(scaled) < run(normal)) is expected_faster


GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
APPLEBOT = (
    "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Safari/605.1.15 (Applebot/0.1)"
)


class Verdicts:
    def __init__(self, table):
        self.table = table

    def verdict(self, ip, claimed):
        return self.table.get((ip, claimed))


def full_engine(verdicts=None):
    from scrapewarden.lists import client_sanity, ip_reputation

    p = policy()
    return Engine(p, client=client_sanity(p), reputation=ip_reputation(p), bot_verdicts=verdicts)


def test_crawler_in_its_published_range_passes_and_impostor_does_not():
    from scrapewarden.lists import load_ip_ranges

    real_ip = load_ip_ranges().crawlers["googlebot"]._tree.prefixes()[0].split("/")[0]
    engine = full_engine()
    ok = engine.decide(facts(T0, ip=real_ip, path="/users/1", user_agent=GOOGLEBOT, headers=()))
    assert ok.action is Action.ALLOW and ok.evidence[0].detector == "verified_bot"
    fake = engine.decide(facts(T0, ip="198.51.100.20", path="/users/1", user_agent=GOOGLEBOT, headers=()))
    assert fake.action is not Action.ALLOW
    assert any(e.detector == "client.spoofed_crawler" for e in fake.evidence)


def test_crawler_without_published_ranges_relies_on_dns_verdicts():
    unknown = full_engine().decide(facts(T0, ip="17.58.1.1", path="/", user_agent=APPLEBOT, headers=()))
    assert not any(e.detector == "client.spoofed_crawler" for e in unknown.evidence)
    verified = full_engine(Verdicts({("17.58.1.1", "applebot"): True}))
    assert (
        verified.decide(facts(T0, ip="17.58.1.1", path="/", user_agent=APPLEBOT, headers=())).action
        is Action.ALLOW
    )
    refuted = full_engine(Verdicts({("17.58.1.1", "applebot"): False}))
    d = refuted.decide(facts(T0, ip="17.58.1.1", path="/", user_agent=APPLEBOT, headers=()))
    assert any(e.detector == "client.spoofed_crawler" for e in d.evidence)


def test_no_assets_counts_only_where_the_site_serves_assets():
    from scrapewarden.core.engine import SITE_ASSETS_MIN

    def pages(engine, ip):
        return [engine.decide(facts(T0 + i, ip=ip, path="/feed")) for i in range(30)]

    cdn_site = Engine(policy())
    assert not any(
        e.detector == "client.no_assets" for d in pages(cdn_site, "198.51.100.1") for e in d.evidence
    )

    own_assets = Engine(policy())
    for i in range(SITE_ASSETS_MIN):
        own_assets.decide(facts(T0, ip=f"192.0.2.{i + 1}", path="/static/app.css"))
    assert any(
        e.detector == "client.no_assets" for d in pages(own_assets, "198.51.100.1") for e in d.evidence
    )


def test_young_account_budgets_grow_with_age():
    """The same pace is suspicious from a minutes-old account, not from a two-day-old one."""
    ids = random.Random(8).sample(range(1, 100000), 60)

    def flagged(age_seconds):
        engine = Engine(policy())
        for i, x in enumerate(ids):
            f = facts(
                T0 + i * 50,
                path=f"/users/{x}",
                account_id="a",
                account_created=T0 - age_seconds,
                session_id="s",
            )
            if any(e.detector == "new_account" for e in engine.decide(f).evidence):
                return True
        return False

    assert flagged(600)
    assert not flagged(2 * 86400)


def test_walk_spread_over_a_slash_24_is_seen_as_one_network():
    engine = Engine(policy())
    # Every address with its own browser build, so only the network ties them together.
    reqs = (
        facts(
            T0 + i * 0.2,
            ip=f"203.0.113.{i % 256}",
            path=f"/users/{i}",
            user_agent=f"{CHROME} Build/{i % 256}",
        )
        for i in range(1, 3000)
    )
    n, d = first_action(engine, reqs)
    assert n is not None and n <= 50
    assert any(e.actor == "network" for e in d.evidence)


def test_a_network_with_one_address_is_not_counted_twice():
    engine = Engine(policy())
    for i in range(20):
        engine.decide(facts(T0 + i, ip="198.51.100.7", path=f"/users/{i * 37}"))
    assert engine.actor("network", "198.51.100.0/24") is None
    engine.decide(facts(T0 + 30, ip="198.51.100.8", path="/users/5"))
    assert engine.actor("network", "198.51.100.0/24") is not None


def test_shared_networks_gate_is_bounded():
    from scrapewarden.core.counters import SharedNetworks

    gate = SharedNetworks(max_networks=100)
    for i in range(10_000):
        gate.second_address(f"net{i}", "a")
    assert len(gate._current) + len(gate._previous) <= 100
    assert gate.second_address("net9999", "b") is True


def test_robots_txt_is_always_served():
    engine = Engine(policy())
    engine.bans.add("ip", "198.51.100.7", None)
    assert (
        engine.decide(facts(T0, path="/robots.txt", user_agent="python-requests/2.32.3")).action
        is Action.ALLOW
    )
    assert engine.decide(facts(T0, path="/users/1")).action is Action.BLOCK


def test_fleet_of_addresses_with_one_build_and_no_assets_is_caught_but_browsers_are_not():
    from scrapewarden.core.engine import SITE_ASSETS_MIN

    engine = Engine(policy())
    rng = random.Random(3)
    # Other visitors load assets: the site serves assets.
    for i in range(SITE_ASSETS_MIN):
        engine.decide(facts(T0, ip=f"192.0.2.{i + 1}", path="/static/app.css", user_agent="Firefox"))
    # A residential-proxy fleet: one request each from 300 addresses, same headers, no assets.
    outcomes = []
    for i in range(300):
        ip = f"{rng.randint(11, 199)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        outcomes.append(engine.decide(facts(T0 + i, ip=ip, path=f"/users/{rng.randint(1, 10**6)}")))
    first = next(i for i, d in enumerate(outcomes) if d.action is not Action.ALLOW)
    assert first < 40
    assert any(e.detector == "client.fleet_no_assets" for e in outcomes[first].evidence)
    # A person with the same build who loads the page's assets is not held to the fleet.
    engine.decide(facts(T0 + 400, ip="198.18.0.9", path="/static/app.css"))
    assert engine.decide(facts(T0 + 401, ip="198.18.0.9", path="/users/77")).action is Action.ALLOW


def test_fleet_never_holds_a_person_arriving_on_an_ordinary_page():
    from scrapewarden.core.engine import SITE_ASSETS_MIN

    engine = Engine(policy())
    rng = random.Random(5)
    for i in range(SITE_ASSETS_MIN):
        engine.decide(facts(T0, ip=f"192.0.2.{i + 1}", path="/static/app.css", user_agent="Firefox"))
    for i in range(300):  # the fleet is active
        ip = f"{rng.randint(11, 199)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        engine.decide(facts(T0 + i, ip=ip, path=f"/users/{rng.randint(1, 10**6)}"))
    # Same build, lands on the feed, loads assets, then opens profiles.
    person = "198.18.7.7"
    assert engine.decide(facts(T0 + 400, ip=person, path="/feed")).action is Action.ALLOW
    engine.decide(facts(T0 + 400, ip=person, path="/static/app.css"))
    for n in range(10):
        assert engine.decide(facts(T0 + 401 + n, ip=person, path=f"/users/{n * 97}")).action is Action.ALLOW


def test_adopt_state_keeps_counters_and_bans_across_a_policy_reload():
    old = Engine(policy())
    for i in range(1, 30):
        old.decide(facts(T0 + i, path=f"/users/{i * 7919 % 100000}"))
    old.bans.add("ip", "192.0.2.9", None)
    new = Engine(policy(mode="observe"))
    new.adopt_state(old)
    assert new.actor("ip", "198.51.100.7").seen_hour == old.actor("ip", "198.51.100.7").seen_hour > 0
    assert new.decide(facts(T0 + 40, ip="192.0.2.9")).ban_key == "ip:192.0.2.9"
    assert new.decide(facts(T0 + 40, ip="192.0.2.9")).enforced is False  # the new policy's mode


# -- challenges and clearance ---------------------------------------------------------------------


def _challenging_policy(**kw):
    """Tiny per-address rate budget; over it the score lands between challenge and block."""
    limits = {"per_ip": {"requests_per_minute": 10, "profiles_per_hour": 400, "profiles_per_day": 1500}}
    kw.setdefault("thresholds", {"throttle": 20, "challenge": 30, "block": 95})
    return policy(limits=limits, **kw)


def _burst(engine, n, **kw):
    return [engine.decide(facts(T0 + i * 0.5, **kw)) for i in range(n)]


def test_challenge_carries_a_difficulty_that_rises_with_the_score():
    decisions = _burst(Engine(_challenging_policy()), 19)
    challenged = [d for d in decisions if d.action is Action.CHALLENGE]
    assert challenged
    bits = [d.challenge_bits for d in challenged]
    assert bits[0] >= Policy().challenge.min_bits
    assert bits[-1] > bits[0] and bits[-1] <= Policy().challenge.max_bits
    assert all(d.challenge_bits == 0 for d in decisions if d.action is not Action.CHALLENGE)


def test_cleared_client_is_not_challenged_again_but_is_still_blocked():
    decisions = _burst(Engine(_challenging_policy()), 19, extra={"clearance": "pow"})
    assert Action.CHALLENGE not in {d.action for d in decisions}
    assert any(e.detector == "cleared" for e in decisions[-1].evidence)
    assert decisions[-1].challenge_bits == 0
    # Clearance never lifts a block.
    blocking = _challenging_policy(thresholds={"throttle": 20, "challenge": 30, "block": 80})
    last = _burst(Engine(blocking), 30, extra={"clearance": "pow"})[-1]
    assert last.action is Action.BLOCK


def test_nojs_clearance_halves_the_budgets():
    pow_last = _burst(Engine(_challenging_policy()), 7, extra={"clearance": "pow"})[-1]
    nojs_last = _burst(Engine(_challenging_policy()), 7, extra={"clearance": "nojs"})[-1]
    assert nojs_last.score > pow_last.score
    assert any("limit 5" in e.reason for e in nojs_last.evidence)


def test_under_attack_challenges_everyone_without_clearance_except_the_exempt():
    import hashlib

    key = "partner-key"
    partner = Partner(name="lab", key_sha256=hashlib.sha256(key.encode()).hexdigest())
    engine = Engine(
        policy(
            challenge={"under_attack": True},
            identity={"partners": [partner]},
            actions={"bans": {"blocks_before_ban": 3}},
        )
    )
    fresh = [engine.decide(facts(T0 + i, path="/")) for i in range(10)]
    assert {d.action for d in fresh} == {Action.CHALLENGE}
    assert fresh[0].challenge_bits == Policy().challenge.min_bits
    assert any(e.detector == "under_attack" for e in fresh[0].evidence)
    assert all(not d.new_bans for d in fresh)  # being asked repeatedly is no offence
    cleared = engine.decide(facts(T0 + 20, ip="198.51.100.99", path="/", extra={"clearance": "pow"}))
    assert cleared.action is Action.ALLOW
    assert engine.decide(facts(T0 + 21, path="/robots.txt")).action is Action.ALLOW
    assert engine.decide(facts(T0 + 22, path="/static/app.css")).action is Action.ALLOW
    assert engine.decide(facts(T0 + 23, ip="192.0.2.1", path="/users/3", api_key=key)).action is Action.ALLOW


def test_under_attack_lets_verified_crawlers_through():
    from scrapewarden.lists import client_sanity, ip_reputation, load_ip_ranges

    p = policy(challenge={"under_attack": True})
    engine = Engine(p, client=client_sanity(p), reputation=ip_reputation(p))
    real_ip = load_ip_ranges().crawlers["googlebot"]._tree.prefixes()[0].split("/")[0]
    ok = engine.decide(facts(T0, ip=real_ip, path="/users/1", user_agent=GOOGLEBOT, headers=()))
    assert ok.action is Action.ALLOW


def test_captcha_band_picks_the_challenge_kind_and_asks_more_than_a_work_clearance() -> None:
    """A bot user agent scores 60: in the CAPTCHA band from 55, in the proof-of-work band from 65."""
    from scrapewarden.lists import client_sanity

    def engine(**captcha):
        p = Policy(
            challenge={"captcha": {"provider": "turnstile", "site_key": "k", "secret_key": "s", **captcha}}
        )
        return Engine(p, client=client_sanity(p))

    def ask(e, cleared=None):
        f = facts(
            T0, user_agent="python-requests/2.31.0", headers=(("user-agent", "python-requests/2.31.0"),)
        )
        if cleared:
            f.extra["clearance"] = cleared
        return e.decide(f)

    high = ask(engine(from_score=55))
    assert high.action is Action.CHALLENGE and high.score == 60 and high.challenge_kind == "captcha"
    assert high.challenge_bits > 0
    low = ask(engine(from_score=65))
    assert low.action is Action.CHALLENGE and low.challenge_kind == "pow"
    # Without a provider, every challenge is proof-of-work.
    plain = Engine(Policy(), client=client_sanity(Policy()))
    assert ask(plain).challenge_kind == "pow"
    # A work or no-JS clearance does not spare a client in the CAPTCHA band; a CAPTCHA one does.
    assert ask(engine(from_score=55), cleared="pow").challenge_kind == "captcha"
    assert ask(engine(from_score=55), cleared="nojs").action is Action.CHALLENGE
    assert ask(engine(from_score=55), cleared="captcha").action is Action.ALLOW
    assert ask(engine(from_score=65), cleared="pow").action is Action.ALLOW
