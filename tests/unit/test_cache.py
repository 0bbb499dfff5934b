"""Which build cache entries each builder can use, and the flags it gets."""

from __future__ import annotations

import pytest

from ecs_ship.cache import CacheFlags, cache_flags
from ecs_ship.errors import InputError
from ecs_ship.spec import CacheEntry

PREVIOUS = "127.0.0.1:5000/web@sha256:" + "a" * 64
GHA_ENV = {"ACTIONS_RUNTIME_TOKEN": "t", "ACTIONS_RESULTS_URL": "https://results.example/"}
DEFAULT_FROM = (CacheEntry("previous", "images[0].cache_from[0]"),)
DEFAULT_TO = (CacheEntry("inline", "images[0].cache_to[0]"),)


def test_default_on_the_old_cli_is_the_previous_image_and_the_inline_build_arg() -> None:
    flags = cache_flags("buildkit", DEFAULT_FROM, DEFAULT_TO, previous=PREVIOUS, environ={})
    assert flags == CacheFlags((PREVIOUS,), inline=True)


def test_first_deploy_has_no_previous_image_to_read() -> None:
    flags = cache_flags("buildkit", DEFAULT_FROM, DEFAULT_TO, previous=None, environ={})
    assert flags.cache_from == () and flags.inline


def test_buildx_gets_its_own_syntax() -> None:
    cache_from = (
        *DEFAULT_FROM,
        CacheEntry("image", "images[0].cache_from[1]", ref="r/web:main"),
        CacheEntry("gha", "images[0].cache_from[2]", scope="web"),
    )
    cache_to = (
        CacheEntry("registry", "images[0].cache_to[0]", ref="r/web:cache", mode="max"),
        CacheEntry("gha", "images[0].cache_to[1]", scope="web", mode="max"),
    )
    flags = cache_flags("buildx", cache_from, cache_to, previous=PREVIOUS, environ=GHA_ENV)
    assert flags.cache_from == (f"type=registry,ref={PREVIOUS}", "type=registry,ref=r/web:main", "type=gha,scope=web")
    assert flags.cache_to == ("type=registry,ref=r/web:cache,mode=max", "type=gha,scope=web,mode=max")
    assert not flags.inline and flags.warnings == ()


def test_gha_without_the_runner_token_is_left_out_with_a_warning() -> None:
    cache_to = (CacheEntry("gha", "images[0].cache_to[0]"),)
    flags = cache_flags("buildx", DEFAULT_FROM, cache_to, previous=PREVIOUS, environ={})
    assert flags.cache_to == ()
    assert len(flags.warnings) == 1 and "images[0].cache_to[0]" in flags.warnings[0]
    assert "ACTIONS_RUNTIME_TOKEN" in flags.warnings[0]


@pytest.mark.parametrize(
    ("kind", "entry", "direction"),
    [
        ("buildkit", CacheEntry("registry", "images[0].cache_to[0]", ref="r:c"), "to"),
        ("buildkit", CacheEntry("gha", "images[0].cache_to[0]"), "to"),
        ("buildkit", CacheEntry("gha", "images[0].cache_from[0]"), "from"),
        ("legacy", CacheEntry("gha", "images[0].cache_from[0]"), "from"),
        ("legacy", CacheEntry("registry", "images[0].cache_to[0]", ref="r:c"), "to"),
    ],
)
def test_an_entry_the_builder_cannot_use_is_bad_input(kind: str, entry: CacheEntry, direction: str) -> None:
    args = ((entry,), ()) if direction == "from" else ((), (entry,))
    with pytest.raises(InputError) as caught:
        cache_flags(kind, *args, previous=PREVIOUS, environ=GHA_ENV)  # type: ignore[arg-type]
    assert entry.at in caught.value.message
    assert caught.value.fix is not None and "buildx" in caught.value.fix


def test_legacy_builder_reads_image_references_only() -> None:
    cache_from = (*DEFAULT_FROM, CacheEntry("registry", "images[0].cache_from[1]", ref="r/web:cache"))
    flags = cache_flags("legacy", cache_from, DEFAULT_TO, previous=PREVIOUS, environ={})
    assert flags.image_refs == [PREVIOUS, "r/web:cache"]
    assert not flags.inline  # the legacy builder's images are their own cache
