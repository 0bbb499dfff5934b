"""The sandbox's scaled clock (SimConfig.time_scale): every duration of the world goes through one conversion.

Pure: imports the simulator's config and the container-health translation, starts nothing.
"""

from __future__ import annotations

import pytest

from tests.sandbox import bluegreen, container_health
from tests.sandbox.simulator import SimConfig


def test_default_scale_leaves_every_duration_as_it_was() -> None:
    c = SimConfig()
    assert c.time_scale == 1.0
    assert c.real(300) == 300
    assert c.real(c.retry_delay) == 1.0 and c.real(c.unhealthy_replace_delay) == 2.0
    assert c.real(c.stop_timeout) == 2.0
    # The knobs tests already use: health checks 5x faster, a minute lasting a second.
    assert c.health(5) == 5 * 0.2 and c.health(2) == 2 * 0.2
    assert c.minutes(1) == 1.0 and c.minutes(3) == 3.0


def test_time_scale_divides_every_aws_duration_and_multiplies_with_the_other_knobs() -> None:
    c = SimConfig(time_scale=30, health_time_scale=1.0, minute=60)
    assert c.real(300) == pytest.approx(10)  # deregistration_delay.timeout_seconds default
    assert c.health(30) == pytest.approx(1)  # HealthCheckIntervalSeconds default
    assert c.minutes(1) == pytest.approx(2)  # an AWS minute of bake time
    c.health_time_scale = 0.2
    c.minute = 1.0
    assert c.health(30) == pytest.approx(0.2)
    assert c.minutes(1) == pytest.approx(1 / 30)


def test_real_lags_convert_back_to_aws_seconds() -> None:
    c = SimConfig(time_scale=25)
    assert c.aws_seconds(2.0) == pytest.approx(50)
    assert c.aws_seconds(c.real(300)) == pytest.approx(300)


def test_a_scale_that_is_not_positive_is_refused() -> None:
    with pytest.raises(ValueError):
        SimConfig(time_scale=0)


def test_container_health_checks_run_on_the_scaled_clock() -> None:
    definition = {"healthCheck": {"command": ["CMD", "true"], "startPeriod": 60}}  # interval 30, timeout 5 (defaults)
    at_default = container_health.docker_healthcheck(definition, SimConfig().health)
    assert at_default is not None
    assert at_default["interval"] == int(30 * 0.2 * 1e9) and at_default["timeout"] == int(5 * 0.2 * 1e9)
    fast = container_health.docker_healthcheck(definition, SimConfig(time_scale=30, health_time_scale=1.0).health)
    assert fast is not None
    assert fast["interval"] == pytest.approx(1e9) and fast["start_period"] == pytest.approx(2e9)
    assert fast["timeout"] == pytest.approx(5 / 30 * 1e9, rel=1e-6)
    assert fast["retries"] == 3


def test_bake_minutes_last_what_the_config_says_a_minute_lasts() -> None:
    conf = bluegreen.validate(
        {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 5},
        [
            {
                "targetGroupArn": "tg-blue",
                "containerName": "web",
                "containerPort": 8080,
                "advancedConfiguration": {"alternateTargetGroupArn": "tg-green", "productionListenerRule": "rule"},
            }
        ],
    )
    minute = SimConfig(time_scale=60, minute=60).minutes(1)  # an AWS minute in one real second
    shift = bluegreen.Shift(bluegreen.plan(conf, reconcile=False), [], minute=minute)
    now = 0.0
    while shift.stage != "BAKE_TIME":
        shift.tick(now, green_ready=True, blue_gone=False)
    shift.tick(4.9, green_ready=True, blue_gone=False)
    assert shift.stage == "BAKE_TIME"  # 5 AWS minutes = 5 real seconds here
    shift.tick(5.0, green_ready=True, blue_gone=False)
    assert shift.stage == "CLEAN_UP"
