"""The policy: what to protect, how to recognise clients, and how hard to push back.

Pure data (pydantic v2). Loading a TOML file with line-accurate errors and environment
overrides lives in :mod:`scrapewarden.policy_file`; this module does no I/O.
Every field has a default, so ``Policy()`` protects a site generically.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Strict(BaseModel):
    # Unknown keys are errors: a typo in a policy must not silently disable a control.
    # Inputs stay out of error messages: a policy holds keys (challenge, privacy, CAPTCHA secret).
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


def _check_cidrs(values: list[str]) -> list[str]:
    out = []
    for value in values:
        try:
            out.append(str(ipaddress.ip_network(value.strip(), strict=False)))
        except ValueError as exc:
            raise ValueError(f"not an IP address or CIDR: {value!r}") from exc
    return out


class NetworkPolicy(_Strict):
    """Where the client address comes from."""

    trusted_proxies: list[str] = Field(default_factory=list)
    """CIDRs of proxies whose forwarding header is believed. Empty: the socket peer is the client."""
    client_ip_header: str = "x-forwarded-for"
    """Header carrying the client address when the peer is a trusted proxy."""
    ipv4_network_prefix: int = Field(24, ge=8, le=32)
    ipv6_network_prefix: int = Field(48, ge=16, le=128)

    _v = field_validator("trusted_proxies")(_check_cidrs)

    @field_validator("client_ip_header")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.strip().lower()


class Partner(_Strict):
    """A client allowed to scrape by contract (statement R15), identified by API key."""

    name: str
    key_sha256: str = Field(min_length=64, max_length=64)
    """Hex SHA-256 of the partner's API key; the key itself never sits in the policy."""
    requests_per_hour: int = Field(1000, gt=0)
    records_per_day: int = Field(10000, gt=0)

    @field_validator("key_sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        # Digests are compared as text, so normalise case; a non-hex value could never match.
        value = value.lower()
        if not all(ch in "0123456789abcdef" for ch in value):
            raise ValueError("must be a hex SHA-256 digest (64 characters 0-9, a-f)")
        return value


class IdentityPolicy(_Strict):
    """How to read who is asking. Callables passed to the middleware win over headers/cookies."""

    account_header: str = ""
    account_cookie: str = ""
    account_created_header: str = ""
    """Header with the account's creation time (epoch seconds or ISO 8601), set by the site."""
    session_cookie: str = ""
    api_key_header: str = "x-api-key"
    partners: list[Partner] = Field(default_factory=list)

    @field_validator("account_header", "account_created_header", "api_key_header")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.strip().lower()


class ProtectedResource(_Strict):
    """A URL pattern that exposes one person's record, e.g. ``/users/{id}``.

    ``{name}`` matches one path segment and becomes the record id. With ``query_param`` the
    record id is that query parameter's value instead (``/search?q=...``).
    """

    pattern: str
    kind: str = "profile"
    sensitivity: int = Field(2, ge=1, le=3)
    """1 low, 2 normal, 3 high: scales how fast budgets are used up."""
    query_param: str = ""
    methods: list[str] = Field(default_factory=lambda: ["GET", "HEAD"])
    categories: list[str] = Field(default_factory=list)
    """Kinds of personal data this page shows (``name``, ``photo``, ``email``, ``location``...):
    an incident counts the records and people it exposed per category from these labels."""

    @field_validator("categories")
    @classmethod
    def _categories(cls, value: list[str]) -> list[str]:
        # Labels are compared and counted as text: one spelling per label, no blanks or repeats.
        out: list[str] = []
        for label in value:
            label = label.strip().lower()
            if not label:
                raise ValueError("a category must not be empty")
            if label not in out:
                out.append(label)
        return out

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with '/'")
        if re.search(r"[{}]", re.sub(r"\{[^{}]*\}", "", value)):
            raise ValueError("unbalanced braces")
        # Each placeholder becomes a named regex group: it must be a name, and names must differ,
        # or the pattern would silently never match (or fail to compile) at run time.
        names = re.findall(r"\{([^{}]*)\}", value)
        for name in names:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"placeholder {{{name}}} must be a name like {{id}}")
        if len(set(names)) != len(names):
            raise ValueError("placeholder names must differ")
        return value

    @model_validator(mode="after")
    def _has_id(self) -> ProtectedResource:
        if "{" not in self.pattern and not self.query_param:
            raise ValueError("needs a {placeholder} in the pattern or a query_param to name the record")
        return self


class ActorLimits(_Strict):
    """Budgets for one kind of actor (an address, a network, a session, an account...).

    Every budget must be positive: to make one generous, raise it; there is no "0 = off".
    """

    requests_per_minute: int = Field(gt=0)
    profiles_per_hour: int = Field(gt=0)
    """Distinct protected records viewed per hour (statement R3)."""
    profiles_per_day: int = Field(gt=0)


def _limits(rpm: int, hour: int, day: int) -> ActorLimits:
    return ActorLimits(requests_per_minute=rpm, profiles_per_hour=hour, profiles_per_day=day)


class NewAccountPolicy(_Strict):
    """New-account velocity (statement R4): young accounts get smaller budgets."""

    young_hours: float = Field(72.0, gt=0)
    """An account younger than this is scored for velocity."""
    lookups_per_minute: int = Field(10, gt=0)
    """Distinct records a brand-new account may look up per minute before it is suspicious."""
    lookups_per_hour: int = Field(40, gt=0)
    """Both budgets hold at sign-up and grow to three times as much by ``young_hours``."""


class Limits(_Strict):
    per_ip: ActorLimits = Field(default_factory=lambda: _limits(240, 400, 1500))
    per_network: ActorLimits = Field(default_factory=lambda: _limits(1200, 1500, 6000))
    per_session: ActorLimits = Field(default_factory=lambda: _limits(180, 150, 600))
    per_account: ActorLimits = Field(default_factory=lambda: _limits(180, 120, 500))
    per_fingerprint: ActorLimits = Field(default_factory=lambda: _limits(1200, 1500, 6000))
    new_account: NewAccountPolicy = Field(default_factory=NewAccountPolicy)


class Thresholds(_Strict):
    """Risk score (0-100) at which each action starts."""

    throttle: float = Field(30, ge=0, le=100)
    challenge: float = Field(50, ge=0, le=100)
    block: float = Field(80, ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if not self.throttle <= self.challenge <= self.block:
            raise ValueError("must satisfy throttle <= challenge <= block")
        return self


BanScope = Literal["ip", "network", "account", "fingerprint", "session"]


def _default_ban_scopes() -> list[BanScope]:
    return ["ip", "account"]


class BanPolicy(_Strict):
    """Automatic bans after repeated blocks, escalating like fail2ban's bantime.increment."""

    enabled: bool = True
    blocks_before_ban: int = Field(20, gt=0)
    """Blocked requests within ``window_seconds`` that turn into a ban."""
    window_seconds: int = Field(600, gt=0)
    ttl_seconds: int = Field(900, gt=0)
    factor: float = Field(2.0, ge=1.0)
    """Each repeat offence multiplies the ban time by this."""
    max_ttl_seconds: int = Field(7 * 86400, gt=0)
    scopes: list[BanScope] = Field(default_factory=_default_ban_scopes)


class ActionPolicy(_Strict):
    throttle_retry_after: int = Field(60, gt=0)
    tarpit_seconds: float = Field(0.0, ge=0, le=30)
    """Delay added to blocked responses (0: off). Keep small: tarpits cost you sockets too."""
    decoy: bool = False
    """Answer blocked record requests with a plausible fake instead of 403."""
    help_url: str = ""
    """Shown on block pages: where a person who was blocked by mistake can get help."""
    bans: BanPolicy = Field(default_factory=BanPolicy)


class AllowPolicy(_Strict):
    networks: list[str] = Field(default_factory=list)
    """Never act on these (office networks, monitoring)."""
    accounts: list[str] = Field(default_factory=list)
    paths: list[str] = Field(default_factory=lambda: ["/robots.txt"])
    """Paths anyone may fetch, whatever else they did: a crawler must be able to read the rules
    it is asked to follow, even from an address we stopped."""
    verified_bots: bool = True
    """Let crawlers through whose address matches their published ranges or passes FCrDNS."""
    verify_dns: bool = False
    """Also verify crawlers by forward-confirmed reverse DNS (Applebot, Yandex, Baidu... publish
    no ranges). Off by default because it makes DNS queries; lookups run in the background and
    never delay a request."""

    _v = field_validator("networks")(_check_cidrs)


class DenyPolicy(_Strict):
    networks: list[str] = Field(default_factory=list)
    user_agents: list[str] = Field(default_factory=list)
    """Extra regular expressions, matched case-insensitively against the user agent."""

    _v = field_validator("networks")(_check_cidrs)


class ReputationPolicy(_Strict):
    """Weights for where an address comes from. 0 turns a list off."""

    datacenter: float = Field(25, ge=0, le=100)
    vpn: float = Field(15, ge=0, le=100)
    tor: float = Field(20, ge=0, le=100)
    extra_lists: dict[str, list[str]] = Field(default_factory=dict)
    """Name -> CIDRs of the operator's own lists, scored with ``extra_weight``."""
    extra_weight: float = Field(30, ge=0, le=100)


class ClientPolicy(_Strict):
    """Client sanity checks (bot user agents, headless markers, header consistency)."""

    bot_user_agents: float = Field(60, ge=0, le=100)
    ai_crawlers: float = Field(80, ge=0, le=100)
    headless: float = Field(60, ge=0, le=100)
    inconsistent_browser: float = Field(25, ge=0, le=100)
    missing_accept_language: float = Field(10, ge=0, le=100)
    no_assets: float = Field(15, ge=0, le=100)
    fleet_no_assets: float = Field(50, ge=0, le=100)
    """Anonymous clients with one fingerprint across many addresses fetching pages but no assets."""
    challenge_automation: float = Field(60, ge=0, le=100)
    """The browser that solved a challenge said it is automated (navigator.webdriver, headless)."""
    challenge_anomaly: float = Field(25, ge=0, le=100)
    """The browser that solved a challenge looked unlike one a person uses (no languages, no screen)."""
    challenge_no_report: float = Field(40, ge=0, le=100)
    """A challenge was solved without the page's browser report: a program that hashes, not a browser."""
    asset_prefixes: list[str] = Field(default_factory=lambda: ["/static/", "/assets/", "/favicon.ico"])
    asset_suffixes: list[str] = Field(
        default_factory=lambda: [
            ".css",
            ".js",
            ".png",
            ".jpg",
            ".jpeg",
            ".gif",
            ".svg",
            ".webp",
            ".ico",
            ".woff2",
        ]
    )


class TrapPolicy(_Strict):
    """Honeypot paths: linked invisibly, disallowed in robots.txt; only crawlers visit them."""

    paths: list[str] = Field(default_factory=lambda: ["/.sw/trap", "/wp-login.php", "/.env"])
    weight: float = Field(90, ge=0, le=100)


class PrivacyPolicy(_Strict):
    """Our own stored data is personal data too."""

    pseudonymize: bool = True
    """Store keyed hashes (HMAC-SHA256) of addresses and account ids instead of the values."""
    key: str = ""
    """The pseudonymisation key; set it via SCRAPEWARDEN_PRIVACY__KEY. Empty: a random per-process key."""
    event_retention_days: int = Field(30, gt=0)
    record_allowed_share: float = Field(0.01, ge=0, le=1)
    """Share of addresses (picked by a keyed hash of their pseudonym) whose *allowed* requests
    are recorded too, so a draft policy replayed on the dashboard shows what it would newly
    refuse. 0: only refusals are recorded. See docs/policy.md for its cost."""


PeopleSource = Literal["", "csv", "sql", "callable"]
_CALLABLE_NAME = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


class PeopleLookupPolicy(_Strict):
    """Where an incident's exposed records are looked up to find whose they are (R8).

    ``csv``: a file with one row per record; ``sql``: a query run through a DB-API driver
    (sqlite3 by default), with ``{ids}`` standing for the batch of record ids; ``callable``: a
    Python function named ``"module:function"``. See docs/notices.md for the columns each returns.
    """

    source: PeopleSource = ""
    """"" (no lookup: exposed records are listed, no people), "csv", "sql" or "callable"."""
    path: str = ""
    """csv: the file."""
    driver: str = "sqlite3"
    """sql: the DB-API module whose ``connect(database)`` opens the connection."""
    database: str = Field("", repr=False)
    """sql: the SQLite file (opened read-only), or what ``driver.connect`` is given (a DSN may hold
    a password: set it through SCRAPEWARDEN_INCIDENTS__PEOPLE__DATABASE, not in the file)."""
    query: str = ""
    """sql: the query for every record kind; ``{ids}`` becomes one placeholder per id."""
    queries: dict[str, str] = Field(default_factory=dict)
    """sql: a query per record kind (e.g. ``profile``), used instead of ``query`` for that kind."""
    function: str = ""
    """callable: ``"package.module:function"``, given a list of (kind, id) pairs per batch."""
    batch_size: int = Field(500, gt=0, le=10000)
    """Records looked up per query or call."""

    @field_validator("function")
    @classmethod
    def _function(cls, value: str) -> str:
        value = value.strip()
        if value and not _CALLABLE_NAME.fullmatch(value):
            raise ValueError('must look like "package.module:function"')
        return value

    @model_validator(mode="after")
    def _complete(self) -> PeopleLookupPolicy:
        if self.source == "csv" and not self.path:
            raise ValueError('source "csv" needs path')
        if self.source == "sql":
            if not self.database:
                raise ValueError('source "sql" needs database')
            if not (self.query or self.queries):
                raise ValueError('source "sql" needs query (or queries per record kind)')
            for query in [self.query, *self.queries.values()]:
                if query and "{ids}" not in query:
                    raise ValueError("every query needs {ids} where the record ids go, e.g. IN ({ids})")
        if self.source == "callable" and not self.function:
            raise ValueError('source "callable" needs function = "module:function"')
        return self


class NoticePolicy(_Strict):
    """Who the letters come from, and how long recipients are given (R7, R8)."""

    organisation: str = ""
    """The sender: the organisation that runs the site (the controller)."""
    contact_name: str = ""
    """Who signs the letters (the privacy officer or DPO)."""
    contact_email: str = ""
    contact_address: str = ""
    website: str = ""
    templates_dir: str = ""
    """A directory of templates that replace the built-in ones file by file (same names)."""
    default_language: str = "en"
    """Language used for people whose own language has no template."""
    deletion_days: int = Field(14, gt=0, le=365)
    """Days the scraper's operator is given to confirm that the scraped data is deleted."""
    response_days: int = Field(7, gt=0, le=365)
    """Days the operator is given to answer a cease-and-desist letter."""
    remind_every_days: float = Field(7.0, gt=0, le=365)
    """How often an overdue letter is brought up again."""
    regimes_file: str = ""
    """A TOML file of breach-notification regimes added to (or replacing) the built-in table."""

    @field_validator("default_language")
    @classmethod
    def _language(cls, value: str) -> str:
        value = value.strip().lower().replace("_", "-")
        if not re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{2,8})*", value):
            raise ValueError("must be a language tag such as en or fr-ca")
        return value


class IncidentPolicy(_Strict):
    """When detections open incidents (R2, R7, R8; see docs/incidents.md)."""

    enabled: bool = True
    on_block: bool = True
    """Open one when an actor is blocked after being served at least ``min_records`` records."""
    refusal: Literal["block", "challenge", "throttle"] = "block"
    """The mildest action that counts as stopping an actor for ``on_block``: ``challenge`` or
    ``throttle`` also file scrapers that were slowed or challenged, not only blocked."""
    min_records: int = Field(20, ge=0)
    on_campaign: bool = True
    """Open one when one client fingerprint is judged across many addresses (a campaign)."""
    interval_seconds: float = Field(60.0, gt=0)
    """Each actor's findings are written to the store at most once per interval; the request
    path only counts in memory."""
    remember_records: int = Field(1000, ge=0)
    """Records served per address held in memory, to name exactly what an incident exposed."""
    remember_addresses: int = Field(5000, gt=0)
    """Addresses held in memory (least recently seen forgotten first)."""
    team: str = ""
    """The team new incidents are given (R2: who responds)."""
    people: PeopleLookupPolicy = Field(default_factory=PeopleLookupPolicy)
    """Where an incident's exposed records are looked up to find whose they are (docs/notices.md)."""
    notices: NoticePolicy = Field(default_factory=NoticePolicy)
    """Who the letters come from and the periods they give (docs/notices.md)."""


CaptchaProvider = Literal["", "turnstile", "hcaptcha", "recaptcha"]


def _check_provider_url(value: str) -> str:
    """An https URL, or http to a loopback address (a stand-in for tests): the secret key travels
    to this URL, and over plain http it could be read on the way."""
    value = value.strip()
    if not value:
        return value
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
    except ValueError:
        parts, host = None, ""
    if parts is not None and host and parts.scheme == "https":
        return value
    if parts is not None and parts.scheme == "http" and _is_loopback(host):
        return value
    raise ValueError("must be an https:// URL (plain http:// only to a loopback address)")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class CaptchaPolicy(_Strict):
    """A third-party CAPTCHA for the riskiest challenged clients (Turnstile, hCaptcha, reCAPTCHA).

    Off unless ``provider`` is set. Keys come from the provider's dashboard; the secret belongs in
    the environment (``SCRAPEWARDEN_CHALLENGE__CAPTCHA__SECRET_KEY``), not in the file.
    """

    provider: CaptchaProvider = ""
    """"" (none: every challenge is proof-of-work), "turnstile", "hcaptcha" or "recaptcha"."""
    site_key: str = ""
    """The public key the widget on the page is drawn with."""
    secret_key: str = Field("", repr=False)
    """The key the server proves itself with to the provider. Never shown in logs or pages."""
    verify_url: str = ""
    """The provider's siteverify endpoint; empty: the provider's documented one."""
    script_url: str = ""
    """The provider's widget script; empty: the provider's documented one."""
    timeout_seconds: float = Field(5.0, gt=0, le=10)
    """How long to wait for the provider at each network step (connect, send, read) before telling
    the person it did not answer. At most 10: a person is waiting on the page meanwhile."""
    from_score: float | None = Field(None, ge=0, le=100)
    """Risk score at and above which a challenge is a CAPTCHA instead of proof-of-work; it must
    lie between ``thresholds.challenge`` and ``thresholds.block``. None: halfway between them."""
    min_score: float = Field(0.5, ge=0, le=1)
    """reCAPTCHA v3 only: answers scored below this (0 bot ... 1 person) are refused."""
    hostnames: list[str] = Field(default_factory=list)
    """When set, the hostname the provider says the CAPTCHA was solved on must be one of these."""
    send_remote_ip: bool = True
    """Send the visitor's address with the check (the providers' ``remoteip``). The browser already
    contacts the provider directly; turn this off to share nothing more."""

    _urls = field_validator("verify_url", "script_url")(_check_provider_url)

    @field_validator("hostnames")
    @classmethod
    def _lower_hosts(cls, value: list[str]) -> list[str]:
        return [host.strip().lower() for host in value]

    @model_validator(mode="after")
    def _keys(self) -> CaptchaPolicy:
        if self.provider and not (self.site_key and self.secret_key):
            raise ValueError(
                f"provider {self.provider!r} needs site_key and secret_key "
                "(set the secret through SCRAPEWARDEN_CHALLENGE__CAPTCHA__SECRET_KEY)"
            )
        return self


class ChallengePolicy(_Strict):
    """Proof-of-work challenges and the clearance a passed challenge earns."""

    key: str = ""
    """Signing key for challenges and clearance cookies; set it via SCRAPEWARDEN_CHALLENGE__KEY.
    Empty: a key generated once and kept in the state store, shared by every instance using it."""
    clearance_hours: float = Field(24.0, gt=0, le=24 * 30)
    """How long a passed challenge is remembered, so the same person is not asked again."""
    min_bits: int = Field(14, ge=1, le=32)
    """Proof-of-work difficulty (leading zero bits) at the challenge threshold."""
    max_bits: int = Field(20, ge=1, le=32)
    """Difficulty just below the block threshold."""
    nojs_delay_seconds: float = Field(5.0, ge=0, le=120)
    """How long the no-JavaScript path makes a visitor wait before its form is accepted."""
    under_attack: bool = False
    """Challenge every visitor who has no clearance yet (for sites in the middle of an attack)."""
    captcha: CaptchaPolicy = Field(default_factory=CaptchaPolicy)
    """A CAPTCHA instead of proof-of-work for the riskiest challenged clients (off by default)."""

    @model_validator(mode="after")
    def _ordered(self) -> ChallengePolicy:
        if self.min_bits > self.max_bits:
            raise ValueError("must satisfy min_bits <= max_bits")
        return self


class Policy(_Strict):
    """The whole policy. ``Policy()`` is the generic default."""

    mode: Literal["enforce", "observe"] = "enforce"
    state: str = Field("", repr=False)
    """State store URL (bans, events, challenge key; on Redis also the shared per-actor
    counters), e.g. ``redis://10.0.0.5:6379/0``. Empty: ``memory://``. The ``--state`` flag and
    ``SCRAPEWARDEN_STATE`` win over it. The URL is checked by the policy loader (an adapter);
    it may hold a password, so it is kept out of the policy's repr."""
    network: NetworkPolicy = Field(default_factory=NetworkPolicy)
    identity: IdentityPolicy = Field(default_factory=IdentityPolicy)
    protected: list[ProtectedResource] = Field(default_factory=list)
    limits: Limits = Field(default_factory=Limits)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    actions: ActionPolicy = Field(default_factory=ActionPolicy)
    allow: AllowPolicy = Field(default_factory=AllowPolicy)
    deny: DenyPolicy = Field(default_factory=DenyPolicy)
    reputation: ReputationPolicy = Field(default_factory=ReputationPolicy)
    client: ClientPolicy = Field(default_factory=ClientPolicy)
    traps: TrapPolicy = Field(default_factory=TrapPolicy)
    privacy: PrivacyPolicy = Field(default_factory=PrivacyPolicy)
    incidents: IncidentPolicy = Field(default_factory=IncidentPolicy)
    challenge: ChallengePolicy = Field(default_factory=ChallengePolicy)

    @model_validator(mode="after")
    def _captcha_band(self) -> Policy:
        start = self.challenge.captcha.from_score
        low, high = self.thresholds.challenge, self.thresholds.block
        if start is not None and not low <= start <= high:
            raise ValueError(
                f"challenge.captcha.from_score ({start:g}) must lie between thresholds.challenge "
                f"({low:g}) and thresholds.block ({high:g}): below the first nobody is challenged, "
                "above the second everyone is blocked"
            )
        return self

    @property
    def observe(self) -> bool:
        return self.mode == "observe"
