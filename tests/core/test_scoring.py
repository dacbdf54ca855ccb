from scrapewarden.core.decision import Action, Evidence
from scrapewarden.core.policy import Thresholds
from scrapewarden.core.scoring import action_for, combine, limit_weight


def ev(w):
    return Evidence("x", w, "r")


def test_combine_is_noisy_or():
    assert combine([]) == 0.0
    assert combine([ev(30), ev(30)]) == 51.0
    assert combine([ev(100), ev(0)]) == 100.0
    assert combine([ev(10)] * 50) < 100.0


def test_actions_follow_thresholds():
    t = Thresholds()
    assert action_for(0, t) is Action.ALLOW
    assert action_for(t.throttle, t) is Action.THROTTLE
    assert action_for(t.challenge, t) is Action.CHALLENGE
    assert action_for(99, t) is Action.BLOCK


def test_limit_weight_rises_through_the_ladder():
    t = Thresholds()
    assert limit_weight(0.5) == 0.0
    assert 0 < limit_weight(0.9) < t.throttle
    assert t.throttle <= limit_weight(1.0) < t.challenge
    assert limit_weight(2.0) >= t.block
