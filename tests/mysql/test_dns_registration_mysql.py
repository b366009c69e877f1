"""Registrations at the route service on MariaDB (the SQLite twins are in
tests/integration/test_dns_registration.py): served and pushed, two route services on
one database agree, a restart loses nothing, expiry with SELECT ... FOR UPDATE, a mass
expiry held, a storm never held, no advertisement without write access."""

from __future__ import annotations

import pytest

from tests.integration.test_dns_registration import (
    check_a_service_that_cannot_write_does_not_advertise,
    check_a_storm_of_registrations_is_never_held,
    check_expiry_and_mass_expiry_held,
    check_failing_checks_never_empty_a_module_callers_reach,
    check_register_served_pushed_failing_deregistered,
    check_two_route_services_agree_and_a_restart_loses_nothing,
    check_two_route_services_expire_each_instance_once,
)

pytestmark = pytest.mark.mysql


def test_register_served_pushed_failing_deregistered_mysql(no_leaks: None, mysql_url: str) -> None:
    check_register_served_pushed_failing_deregistered(mysql_url)


def test_two_route_services_agree_and_a_restart_loses_nothing_mysql(
    no_leaks: None, mysql_url: str
) -> None:
    check_two_route_services_agree_and_a_restart_loses_nothing(mysql_url)


def test_expiry_and_mass_expiry_held_mysql(
    no_leaks: None, mysql_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    check_expiry_and_mass_expiry_held(mysql_url, caplog)


def test_a_storm_of_registrations_is_never_held_mysql(no_leaks: None, mysql_url: str) -> None:
    check_a_storm_of_registrations_is_never_held(mysql_url)


def test_a_service_that_cannot_write_does_not_advertise_mysql(
    no_leaks: None, mysql_url: str
) -> None:
    check_a_service_that_cannot_write_does_not_advertise(mysql_url)


def test_failing_checks_never_empty_a_module_callers_reach_mysql(
    no_leaks: None, mysql_url: str
) -> None:
    check_failing_checks_never_empty_a_module_callers_reach(mysql_url)


def test_two_route_services_expire_each_instance_once_mysql(no_leaks: None, mysql_url: str) -> None:
    check_two_route_services_expire_each_instance_once(mysql_url)
