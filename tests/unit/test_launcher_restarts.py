"""How long `medic up` waits before restarting a child that exited."""
from medic_cli.launcher import MAX_RESTART_DELAY, STABLE_SECONDS, restart_delay


def test_the_pause_doubles_with_each_quick_crash_up_to_the_cap():
    restarts, delays = 0, []
    for _ in range(7):
        restarts, delay = restart_delay(restarts, healthy_for=2.0)
        delays.append(delay)
    assert delays == [1, 2, 4, 8, 16, MAX_RESTART_DELAY, MAX_RESTART_DELAY]


def test_the_pause_is_1_s_again_after_a_healthy_while():
    restarts = 0
    for _ in range(6):
        restarts, delay = restart_delay(restarts, healthy_for=1.0)
    assert delay == MAX_RESTART_DELAY
    restarts, delay = restart_delay(restarts, healthy_for=STABLE_SECONDS)
    assert (restarts, delay) == (1, 1)
    assert restart_delay(restarts, healthy_for=None)[1] == 2  # never ready: keeps growing
