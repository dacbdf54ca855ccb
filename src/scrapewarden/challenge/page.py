"""The challenge page: what a person sees while their browser proves it is a browser.

One self-contained HTML document with no external resources except the two scripts of this
package (``/.sw/challenge.js`` and the worker it starts). Everything the page needs to know
(challenge, difficulty, where to go next) travels in ``data-*`` attributes, so there is no
inline script and a strict Content-Security-Policy can forbid one.

Three paths through the page:

* JavaScript and cookies: the script solves the proof-of-work and submits a form to
  ``/.sw/verify``; the server's 303 and clearance cookie bring the person back to ``next``.
* No JavaScript: the ``<noscript>`` form posts ``nojs=1`` after a short wait. A POST cannot be
  made by a meta refresh, and a GET verify URL would put a live challenge into logs, history
  and link prefetchers, so the slow path is a form with one button. No meta refresh at all:
  it would reload this same page and hand out a fresh challenge, which helps nobody.
* Cookies disabled: the script says so plainly instead of solving; without a cookie the
  clearance cannot be remembered and the person would be challenged again and again.

For the riskiest clients the page shows a third-party CAPTCHA widget instead (``widget``): the
provider's script is then the one external resource (``defer`` and after ours, never ``async``:
deferred scripts run in order, so ``window.swCaptchaDone`` exists before the widget can call it),
the form carries the same signed challenge (so the answer stays bound to this client and
single-use) plus ``kind=captcha``, and the script submits it as soon as the widget reports
success (``data-callback``). A CAPTCHA needs JavaScript; the ``<noscript>`` block says so
instead of offering the wait.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .captcha import Widget

VERIFY_PATH = "/.sw/verify"
SCRIPT_PATH = "/.sw/challenge.js"
WORKER_PATH = "/.sw/worker.js"

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "title": "A quick check is needed",
        "why": (
            "This site protects the people listed on it from bulk copying. "
            "A quick check is needed to confirm that a browser is asking, not an automated copier. "
            "Your browser does this by itself; it usually takes a second or two."
        ),
        "progress_label": "Checking your browser",
        "working": "Checking your browser…",
        "done": "Done. Taking you to the page you asked for…",
        "cookies": (
            "Your browser does not accept cookies from this site. The check can only be "
            "remembered with a cookie, so please allow cookies for this site and reload the page."
        ),
        "loop": (
            "The check was passed but did not stick, probably because cookies are blocked. "
            "Please allow cookies for this site and reload the page."
        ),
        "failed": "The check could not run in this browser. Please reload the page, or ask for help below.",
        "nojs": (
            "JavaScript is off, so your browser cannot do the check by itself. "
            "You can still continue: wait about {delay} seconds, then press Continue. "
            "This way takes a few seconds longer. Cookies must be allowed."
        ),
        "continue": "Continue",
        "help_heading": "Need help?",
        "help_link": "Contact the site about this check",
        "help_none": "If this page keeps coming back, contact the site's owner.",
        "reference": "Reference",
        "going_to": "You will return to",
        "captcha_why": (
            "This site protects the people listed on it from bulk copying. "
            "Please complete the check below to confirm that a person is asking; "
            "you will then be taken to the page you asked for."
        ),
        "captcha_nojs": (
            "This check needs JavaScript. Please turn JavaScript on for this site and reload the page."
        ),
    },
    "fr": {
        "title": "Une vérification rapide est nécessaire",
        "why": (
            "Ce site protège les personnes qui y figurent contre la copie en masse. "
            "Une vérification rapide est nécessaire pour confirmer qu'un navigateur fait la demande, "
            "et non un copieur automatique. Votre navigateur s'en charge seul ; "
            "cela prend en général une ou deux secondes."
        ),
        "progress_label": "Vérification de votre navigateur",
        "working": "Vérification de votre navigateur…",
        "done": "Terminé. Retour à la page demandée…",
        "cookies": (
            "Votre navigateur refuse les cookies de ce site. La vérification ne peut être retenue "
            "qu'avec un cookie : autorisez les cookies pour ce site, puis rechargez la page."
        ),
        "loop": (
            "La vérification a réussi mais n'a pas été retenue, sans doute parce que les cookies "
            "sont bloqués. Autorisez les cookies pour ce site, puis rechargez la page."
        ),
        "failed": (
            "La vérification n'a pas pu s'exécuter dans ce navigateur. "
            "Rechargez la page ou demandez de l'aide ci-dessous."
        ),
        "nojs": (
            "JavaScript est désactivé : votre navigateur ne peut pas faire la vérification seul. "
            "Vous pouvez quand même continuer : attendez environ {delay} secondes, puis appuyez "
            "sur Continuer. Ce chemin prend quelques secondes de plus. Les cookies doivent être autorisés."
        ),
        "continue": "Continuer",
        "help_heading": "Besoin d'aide ?",
        "help_link": "Contacter le site au sujet de cette vérification",
        "help_none": "Si cette page revient sans cesse, contactez le responsable du site.",
        "reference": "Référence",
        "going_to": "Vous reviendrez à",
        "captcha_why": (
            "Ce site protège les personnes qui y figurent contre la copie en masse. "
            "Merci de compléter la vérification ci-dessous pour confirmer qu'une personne fait la "
            "demande ; vous serez ensuite conduit à la page demandée."
        ),
        "captcha_nojs": (
            "Cette vérification nécessite JavaScript. "
            "Activez JavaScript pour ce site, puis rechargez la page."
        ),
    },
}
"""Page text per language. Add a language by adding a dict with the same keys."""

DEFAULT_LANG = "en"


def pick_lang(lang: str) -> str:
    """The supported language for ``lang`` ("fr-CA" gives "fr"); English when unknown."""
    base = (lang or "").strip().lower().replace("_", "-").split("-", 1)[0]
    return base if base in STRINGS else DEFAULT_LANG


def safe_next(next: str) -> str:
    """``next`` when it is a path on this site, else "/": the page never sends anyone elsewhere."""
    if (
        not next.startswith("/")
        or next.startswith(("//", "/\\"))
        or any(ord(ch) < 0x20 or ch == "\x7f" for ch in next)
    ):
        return "/"
    return next


def safe_help_url(url: str) -> str:
    """Only http(s), mailto and site-relative links: never ``javascript:`` or the like."""
    url = url.strip()
    if url.lower().startswith(("https://", "http://", "mailto:")):
        return url
    if url.startswith("/") and not url.startswith(("//", "/\\")):
        return url
    return ""


_STYLE = (
    "body{font:1rem/1.5 system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;"
    "color:#111;background:#fff}"
    "progress{width:100%;height:1rem}"
    "button{font:inherit;padding:.4rem 1.2rem}"
    ".sw-alert{border-left:.3rem solid #b00;padding-left:.8rem}"
    "@media (prefers-color-scheme:dark){body{color:#eee;background:#111}}"
)


def render(
    *,
    challenge: str,
    bits: int,
    next: str,
    nojs_delay: int,
    lang: str = "en",
    help_url: str = "",
    reference: str = "",
    widget: Widget | None = None,
) -> str:
    """The challenge page as one HTML string.

    ``next`` is the site path to return to (anything else becomes "/"); ``help_url`` is shown
    only when it is http(s), mailto or site-relative. With ``widget`` the page asks for that
    CAPTCHA instead of proof-of-work. Every value is escaped.
    """
    code = pick_lang(lang)
    text = STRINGS[code]
    esc = html.escape
    target = safe_next(next)
    link = safe_help_url(help_url)
    delay = max(0, int(nojs_delay))
    bits = max(0, int(bits))

    if link:
        help_html = f'<p><a href="{esc(link)}">{esc(text["help_link"])}</a></p>'
    else:
        help_html = f"<p>{esc(text['help_none'])}</p>"
    if reference:
        help_html += f"\n<p>{esc(text['reference'])}: <code>{esc(reference)}</code></p>"

    hidden_common = (
        f'<input type="hidden" name="challenge" value="{esc(challenge)}">'
        f'<input type="hidden" name="next" value="{esc(target)}">'
    )
    if widget is not None:
        return _render_captcha(
            widget,
            text=text,
            code=code,
            challenge=challenge,
            target=target,
            hidden=hidden_common,
            help=help_html,
        )
    return f"""<!DOCTYPE html>
<html lang="{code}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex,nofollow">
<title>{esc(text["title"])}</title>
<style>{_STYLE}</style>
<script src="{SCRIPT_PATH}" defer></script>
</head>
<body>
<main id="sw-challenge" data-challenge="{esc(challenge)}" data-bits="{bits}" data-next="{esc(target)}" \
data-verify="{VERIFY_PATH}" data-worker="{WORKER_PATH}" data-lang="{code}" \
data-done="{esc(text["done"])}" data-working="{esc(text["working"])}">
<h1>{esc(text["title"])}</h1>
<p>{esc(text["why"])}</p>
<p>{esc(text["going_to"])} <code>{esc(target)}</code>.</p>
<div id="sw-progress-box" hidden>
<label for="sw-progress">{esc(text["progress_label"])}</label>
<progress id="sw-progress" max="100"></progress>
</div>
<p id="sw-status" role="status" aria-live="polite"></p>
<p id="sw-cookies" class="sw-alert" role="alert" hidden>{esc(text["cookies"])}</p>
<p id="sw-loop" class="sw-alert" role="alert" hidden>{esc(text["loop"])}</p>
<p id="sw-failed" class="sw-alert" role="alert" hidden>{esc(text["failed"])}</p>
<form id="sw-form" method="post" action="{VERIFY_PATH}" hidden>{hidden_common}\
<input type="hidden" name="nonce" value=""><input type="hidden" name="signals" value=""></form>
<noscript>
<form method="post" action="{VERIFY_PATH}">{hidden_common}<input type="hidden" name="nojs" value="1">
<p>{esc(text["nojs"].format(delay=delay))}</p>
<p><button type="submit">{esc(text["continue"])}</button></p>
</form>
</noscript>
<h2>{esc(text["help_heading"])}</h2>
{help_html}
</main>
</body>
</html>
"""


def _render_captcha(
    widget: Widget, *, text: dict[str, str], code: str, challenge: str, target: str, hidden: str, help: str
) -> str:
    """The CAPTCHA variant: the provider's widget in a visible form with a Continue button."""
    esc = html.escape
    return f"""<!DOCTYPE html>
<html lang="{code}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex,nofollow">
<title>{esc(text["title"])}</title>
<style>{_STYLE}</style>
<script src="{SCRIPT_PATH}" defer></script>
<script src="{esc(widget.script_url)}" defer></script>
</head>
<body>
<main id="sw-challenge" data-kind="captcha" data-challenge="{esc(challenge)}" data-next="{esc(target)}" \
data-field="{esc(widget.response_field)}" data-lang="{code}" data-done="{esc(text["done"])}">
<h1>{esc(text["title"])}</h1>
<p>{esc(text["captcha_why"])}</p>
<p>{esc(text["going_to"])} <code>{esc(target)}</code>.</p>
<p id="sw-status" role="status" aria-live="polite"></p>
<p id="sw-cookies" class="sw-alert" role="alert" hidden>{esc(text["cookies"])}</p>
<p id="sw-loop" class="sw-alert" role="alert" hidden>{esc(text["loop"])}</p>
<p id="sw-failed" class="sw-alert" role="alert" hidden>{esc(text["failed"])}</p>
<form id="sw-form" method="post" action="{VERIFY_PATH}">{hidden}\
<input type="hidden" name="kind" value="captcha">
<div class="{esc(widget.widget_class)}" data-sitekey="{esc(widget.site_key)}" \
data-action="{esc(widget.action)}" data-callback="swCaptchaDone"></div>
<p><button type="submit">{esc(text["continue"])}</button></p>
</form>
<noscript><p class="sw-alert">{esc(text["captcha_nojs"])}</p></noscript>
<h2>{esc(text["help_heading"])}</h2>
{help}
</main>
</body>
</html>
"""
