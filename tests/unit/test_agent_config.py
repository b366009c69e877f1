"""Agent configuration: a Lars lars_lb_agent.conf loads unchanged; flags override it."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from lars.agent.cli import build_config, register
from lars.agent.config import AgentConfig, BalancerConfig, ShardMode, parse_addresses
from lars.config import IniFile
from lars.errors import ConfigError

LARS_LB_AGENT_CONF = """\
[reporter]
ip = 127.0.0.1
port = 7779

[dnsserver]
ip = 127.0.0.1
port = 7778

[loadbalance]
;经过若干次获取请求host节点后\uff0c试探选择一次overload过载节点
probe_num=10
;初始化host_info主机信息访问成功的个数\uff0c防止刚启动时少数失败就认为过载
init_succ_cnt=180
init_err_cnt=5
err_rate=0.1
succ_rate=0.5
contin_err_limit=15
contin_succ_limit=15
idle_timeout=15
overload_timeout=15
update_timeout=15
window_err_rate=0.7
"""


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["agent", *argv])


def test_defaults_without_a_file() -> None:
    cfg = build_config(parse([]))
    assert cfg == AgentConfig()
    assert cfg.dns_addresses == (("127.0.0.1", 7778),)
    assert cfg.reporter_addresses == (("127.0.0.1", 7779),)
    assert cfg.base_port == 8888 and cfg.udp_ip == "127.0.0.1"
    assert cfg.mode is ShardMode.ONE_LOOP and cfg.balancer == BalancerConfig()


def test_lars_file_loads_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "lars_lb_agent.conf"
    path.write_text(
        LARS_LB_AGENT_CONF.replace("port = 7778", "port = 17778").replace(
            "probe_num=10", "probe_num=4"
        ),
        encoding="utf-8",
    )
    cfg = build_config(parse(["-c", str(path)]))
    assert cfg.dns_addresses == (("127.0.0.1", 17778),)
    assert cfg.balancer.probe_num == 4
    assert cfg.balancer.window_err_rate == 0.7 and cfg.balancer.idle_timeout == 15.0


def test_flags_override_the_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.conf"
    path.write_text(LARS_LB_AGENT_CONF, encoding="utf-8")
    cfg = build_config(
        parse(
            [
                "-c", str(path), "--base-port", "0", "--dns", "10.0.0.1:1,10.0.0.2:2",
                "--reporter", "h:9", "--mode", "threads", "--probe-num", "3",
                "--caller", "10.9.8.7", "--cache", "/tmp/x.json", "--max-modules", "7",
            ]
        )
    )  # fmt: skip
    assert cfg.base_port == 0 and cfg.mode is ShardMode.THREADS
    assert cfg.dns_addresses == (("10.0.0.1", 1), ("10.0.0.2", 2))
    assert cfg.reporter_addresses == (("h", 9),)
    assert cfg.balancer.probe_num == 3 and cfg.balancer.init_succ_cnt == 180
    assert (cfg.caller, cfg.cache_path, cfg.max_modules) == ("10.9.8.7", "/tmp/x.json", 7)


def test_agent_section_and_address_lists() -> None:
    ini = IniFile.from_string(
        "[dnsserver]\naddresses = a:1, b:2\n[agent]\nmode = threads\nbase_port = 9000\n"
        "max_modules = 10\ncache_path = r.json\ncaller = 1.2.3.4\n"
    )
    cfg = AgentConfig.from_ini(ini)
    assert cfg.dns_addresses == (("a", 1), ("b", 2))
    assert (cfg.mode, cfg.base_port, cfg.max_modules) == (ShardMode.THREADS, 9000, 10)
    assert (cfg.cache_path, cfg.caller) == ("r.json", "1.2.3.4")


@pytest.mark.parametrize(
    "text",
    [
        "[agent]\nmode = fast\n",
        "[agent]\nbase_port = 70000\n",
        "[dnsserver]\nport = 0\n",
        "[dnsserver]\naddresses = nohost\n",
        "[loadbalance]\nerr_rate = 2\n",
        "[loadbalance]\nprobe_num = ten\n",
        "[agent]\nmax_modules = 0\n",
    ],
)
def test_bad_config_is_a_clear_error(text: str) -> None:
    with pytest.raises(ConfigError):
        AgentConfig.from_ini(IniFile.from_string(text))


@pytest.mark.parametrize("text", ["", "a", "a:", ":1", "a:0", "a:70000", "a:1,,b:2"])
def test_parse_addresses_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_addresses(text)


def test_shards_subset_validated() -> None:
    with pytest.raises(ConfigError):
        AgentConfig(shards=(3,))
    with pytest.raises(ConfigError):
        AgentConfig(shards=())


def test_default_mode_follows_the_gil(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from lars.agent.config import default_mode

    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: False, raising=False)
    assert default_mode() is ShardMode.THREADS
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: True, raising=False)
    assert default_mode() is ShardMode.ONE_LOOP


def test_mass_empty_delay_is_read_and_range_checked() -> None:
    assert AgentConfig().mass_empty_delay == 300.0
    ini = IniFile.from_string("[agent]\nmass_empty_delay = 45\n")
    assert AgentConfig.from_ini(ini).mass_empty_delay == 45
    assert AgentConfig.from_ini(IniFile.from_string("[agent]\nmass_empty_delay = 0\n"))
    for bad in ("-1", "0.5", "nan", "inf", "1e9"):
        with pytest.raises(ConfigError, match=r"\[agent\] mass_empty_delay = .*0 or 1\.\.604800"):
            AgentConfig.from_ini(IniFile.from_string(f"[agent]\nmass_empty_delay = {bad}\n"))
