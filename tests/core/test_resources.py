from scrapewarden.core.policy import ProtectedResource
from scrapewarden.core.resources import ResourceMatcher

matcher = ResourceMatcher(
    [
        ProtectedResource(pattern="/users/{id}"),
        ProtectedResource(pattern="/api/v1/profile/{handle}", kind="profile", sensitivity=3),
        ProtectedResource(pattern="/@{handle}"),
        ProtectedResource(pattern="/search", query_param="q", kind="search"),
    ]
)


def test_path_placeholder_becomes_record_id():
    ref = matcher.match("GET", "/users/42", "")
    assert ref is not None and (ref.kind, ref.record_id, ref.sensitivity) == ("profile", "42", 2)
    assert matcher.match("GET", "/users/42/", "").record_id == "42"
    assert matcher.match("GET", "/api/v1/profile/jane", "").sensitivity == 3
    assert matcher.match("GET", "/@jane.doe", "").record_id == "jane.doe"


def test_unprotected_paths_and_methods():
    assert matcher.match("GET", "/users/", "") is None
    assert matcher.match("GET", "/users/42/photos", "") is None
    assert matcher.match("GET", "/static/app.css", "") is None
    assert matcher.match("POST", "/users/42", "") is None


def test_query_parameter_resources():
    ref = matcher.match("GET", "/search", "page=2&q=Ab+C")
    assert ref is not None and (ref.kind, ref.record_id) == ("search", "ab c")
    assert matcher.match("GET", "/search", "") is None
    assert matcher.match("GET", "/search", "q=") is None
    assert matcher.match("GET", "/search", "q=%ZZ%%") is not None  # malformed escapes never raise
