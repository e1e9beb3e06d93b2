"""The pytest plugin's fixtures and marker."""

import pytest

from integrations.sandbox.fixtures import DEMO_MP_APPID


@pytest.mark.wechat_sandbox("small", followers=4, page_size=3)
def test_marker_overrides_reach_the_served_sandbox(wechat_sandbox):
    openids = list(wechat_sandbox.mp_client().user.iter_followers())

    assert wechat_sandbox.url.startswith("http://127.0.0.1:")
    assert openids == wechat_sandbox.openids(range(4))


def test_in_process_fixture_defaults_to_small(wechat_sandbox_local):
    assert wechat_sandbox_local.url is None
    assert wechat_sandbox_local.mp_apps[DEMO_MP_APPID].followers.subscribed_count == 20
