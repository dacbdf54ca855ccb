"""Operator allows in the engine: they override bans and verdicts, expire by the time passed in,
and never stop the counting (allowed scraping is still monitored)."""

from scrapewarden.core.allows import ALLOW_DETECTOR, AllowTable, allow_reason
from scrapewarden.core.decision import Action
from scrapewarden.core.engine import Engine
from scrapewarden.core.facts import RequestFacts
from scrapewarden.core.policy import Policy, ProtectedResource
from scrapewarden.core.reasons import source_of

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
SCRAPER = "198.51.100.7"


def policy(**kw: object) -> Policy:
    return Policy(protected=[ProtectedResource(pattern="/users/{id}")], **kw)  # type: ignore[arg-type]


def facts(now: float, ip: str = SCRAPER, path: str = "/", **kw: object) -> RequestFacts:
    kw.setdefault("headers", BROWSER_HEADERS)
    kw.setdefault("user_agent", CHROME)
    return RequestFacts(now=now, ip=ip, path=path, **kw)  # type: ignore[arg-type]


def test_an_allow_overrides_a_ban_and_says_so() -> None:
    engine = Engine(policy())
    engine.bans.add("ip", SCRAPER, None)
    assert engine.decide(facts(T0)).action is Action.BLOCK
    engine.allows.add("ip", SCRAPER, T0 + 3600)
    d = engine.decide(facts(T0 + 1))
    assert d.action is Action.ALLOW and d.allow_key == f"ip:{SCRAPER}" and d.ban_key is None
    assert d.overridden is Action.BLOCK
    assert d.reasons()[0] == "allowed by an operator (ip), overriding block"
    assert "banned (ip)" in d.reasons()  # what it overrode stays in the record
    assert d.evidence[0].detector == ALLOW_DETECTOR


def test_an_allow_overrides_a_rate_limit_and_counting_goes_on() -> None:
    engine = Engine(policy())
    limit = Policy().limits.per_ip.requests_per_minute
    engine.allows.add("ip", SCRAPER, None)
    decisions = [engine.decide(facts(T0 + i * 0.01, path="/feed")) for i in range(limit * 2)]
    assert all(d.action is Action.ALLOW for d in decisions)
    # The counters kept observing: the address is far over its budget, and the decisions say
    # the allow is what let it through.
    state = engine.actor("ip", SCRAPER)
    assert state is not None and state.per_minute >= limit * 1.5
    last = decisions[-1]
    assert last.overridden is not None and last.overridden >= Action.THROTTLE
    assert any(e.detector == "rate" for e in last.evidence)
    assert last.reasons()[0] == f"allowed by an operator (ip), overriding {last.overridden.label}"
    # No offences counted, no ban requested while allowed.
    assert all(not d.offences and not d.new_bans for d in decisions)
    assert len(engine.bans) == 0


def test_an_allow_with_nothing_to_override_is_a_plain_allow() -> None:
    engine = Engine(policy())
    engine.allows.add("ip", SCRAPER, None)
    d = engine.decide(facts(T0))
    assert d.action is Action.ALLOW and d.overridden is Action.ALLOW
    assert d.reasons() == ["allowed by an operator (ip)"]


def test_an_allow_expires_by_the_time_passed_in() -> None:
    engine = Engine(policy())
    engine.bans.add("ip", SCRAPER, None)
    engine.allows.add("ip", SCRAPER, T0 + 60)
    assert engine.decide(facts(T0 + 59)).action is Action.ALLOW
    after = engine.decide(facts(T0 + 60))
    assert after.action is Action.BLOCK and after.allow_key is None and after.ban_key == f"ip:{SCRAPER}"


def test_lifting_an_allow_restores_the_ban() -> None:
    engine = Engine(policy())
    engine.bans.add("ip", SCRAPER, None)
    engine.allows.add("ip", SCRAPER, None)
    assert engine.decide(facts(T0)).action is Action.ALLOW
    assert engine.allows.remove("ip", SCRAPER) is True
    assert engine.decide(facts(T0 + 1)).action is Action.BLOCK


def test_an_allowed_account_wins_over_its_banned_address() -> None:
    engine = Engine(policy())
    engine.bans.add("ip", SCRAPER, None)
    engine.allows.add("account", "partner-7", None)
    d = engine.decide(facts(T0, account_id="partner-7"))
    assert d.action is Action.ALLOW and d.allow_key == "account:partner-7"
    assert d.reasons()[0] == "allowed by an operator (account), overriding block"
    # Another account from the same banned address is still blocked.
    assert engine.decide(facts(T0, account_id="someone-else")).action is Action.BLOCK


def test_network_and_fingerprint_allows() -> None:
    engine = Engine(policy(deny={"networks": ["192.0.2.0/24"]}))
    from scrapewarden.lists import ip_reputation

    engine.reputation = ip_reputation(engine.policy)
    assert engine.decide(facts(T0, ip="192.0.2.9")).action is Action.BLOCK  # deny list
    engine.allows.add("network", "192.0.2.0/25", None)
    inside = engine.decide(facts(T0, ip="192.0.2.9"))
    assert inside.action is Action.ALLOW and inside.allow_key == "network:192.0.2.0/25"
    assert "address on the deny list" in inside.reasons()
    assert engine.decide(facts(T0, ip="192.0.2.200")).action is Action.BLOCK  # outside the /25

    from scrapewarden.core.fingerprint import fingerprint

    bot = facts(T0, ip="203.0.113.4", user_agent="python-requests/2.32", headers=(("host", "x"),))
    engine.bans.add("fingerprint", fingerprint(bot), None)
    assert engine.decide(bot).action is Action.BLOCK
    engine.allows.add("fingerprint", fingerprint(bot), None)
    again = engine.decide(bot)
    assert again.action is Action.ALLOW and again.allow_key == f"fingerprint:{fingerprint(bot)}"


def test_an_allowed_actor_is_not_challenged_under_attack() -> None:
    engine = Engine(policy(challenge={"under_attack": True}))
    assert engine.decide(facts(T0)).action is Action.CHALLENGE
    engine.allows.add("ip", SCRAPER, None)
    assert engine.decide(facts(T0 + 1)).action is Action.ALLOW


def test_steps_carry_the_allow_to_finish() -> None:
    """A door deciding in steps (shared counters) gets the same answer as decide()."""
    engine = Engine(policy())
    engine.bans.add("ip", SCRAPER, None)
    engine.allows.add("ip", SCRAPER, None)
    step = engine.begin(facts(T0))
    assert not hasattr(step, "action") and step.allowed == f"ip:{SCRAPER}"  # type: ignore[union-attr]
    d = engine.finish(step, engine.observe(step))  # type: ignore[arg-type]
    assert d.action is Action.ALLOW and d.overridden is Action.BLOCK


def test_adopt_state_keeps_the_allows() -> None:
    old = Engine(policy())
    old.allows.add("ip", SCRAPER, None)
    new = Engine(policy())
    new.adopt_state(old)
    assert new.decide(facts(T0)).allow_key == f"ip:{SCRAPER}"


def test_the_reason_reads_back_as_the_operator_allow() -> None:
    for text in (allow_reason("account"), allow_reason("network", "block")):
        source = source_of(text)
        assert source.detector == ALLOW_DETECTOR
    assert source_of(allow_reason("account")).actor == "account"


def test_the_table_knows_when_it_is_empty() -> None:
    table = AllowTable()
    assert table.empty
    table.add("network", "192.0.2.0/24", None)
    table.add("account", "a", T0)
    assert not table.empty
    assert table.remove("network", "192.0.2.0/24") and not table.empty
    assert table.remove("account", "a") and table.empty
    table.add("ip", SCRAPER, None)
    table.clear()
    assert table.empty and table.match(T0, ip=SCRAPER, account=None, session=None, fingerprint="") is None
