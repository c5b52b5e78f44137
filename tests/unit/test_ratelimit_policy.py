"""Pure parts of the limiter: token estimates, 429 bodies, quotas and settings checks."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratelimit.config import (
    LimiterConfig,
    Quota,
    check_model,
    day_offset_seconds,
    parse_model_quotas,
)
from ratelimit.estimate import (
    EstimateStats,
    TokenRates,
    estimate_input_tokens,
    image_tokens,
    text_tokens,
)
from ratelimit.policy import (
    CeilingPolicy,
    WireMargin,
    arrival_bound_us,
    ceiling_factor,
    ceiling_share,
    local_deadline,
    quota_dimension,
    settled_stamp_us,
)
from ratelimit.quota_error import parse_duration, parse_quota_error

# A 429 body as the Gemini API sends it (shape of generativelanguage.googleapis.com).
PER_MINUTE_429 = {
    "error": {
        "code": 429,
        "message": "You exceeded your current quota, please check your plan and billing details.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/"
                        "generate_content_paid_tier_input_token_count",
                        "quotaId": "GenerateContentPaidTierInputTokensPerModelPerMinute",
                        "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"},
                        "quotaValue": "1000000",
                    }
                ],
            },
            {"@type": "type.googleapis.com/google.rpc.Help", "links": [{"url": "https://x"}]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "43s"},
        ],
    }
}


# --- token estimates ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("width", "height", "tokens"),
    [
        (1, 1, 258),
        (384, 384, 258),  # both sides <= 384: one flat charge
        (385, 200, 258),  # larger: one 768 tile
        (768, 768, 258),
        (769, 768, 516),  # two tiles across
        (1700, 2200, 3 * 3 * 258),  # a letter page at 200 dpi
        (2550, 3300, 4 * 5 * 258),  # the same at 300 dpi
    ],
)
def test_image_tokens_follow_gemini_2_tiles(width: int, height: int, tokens: int) -> None:
    assert image_tokens(width, height) == tokens


def test_image_tokens_reject_empty_images() -> None:
    with pytest.raises(ValueError, match="positive"):
        image_tokens(0, 100)


def test_text_tokens_round_up_at_three_characters() -> None:
    assert text_tokens("") == 0
    assert text_tokens("abc") == 1
    assert text_tokens("abcd") == 2
    assert text_tokens("é" * 300) == 100


def test_estimate_adds_every_part_and_the_overhead() -> None:
    prompt = "Transcris chaque ligne de l'index aux immeubles." * 10
    tokens = estimate_input_tokens(texts=[prompt, "{}"], images=[(1700, 2200)], pdf_pages=2)
    assert tokens == 8 + text_tokens(prompt) + 1 + 9 * 258 + 2 * 258


def test_estimate_is_deterministic_and_follows_the_rates() -> None:
    rates = TokenRates(tokens_per_pdf_page=560, chars_per_token=4.0, overhead=0)
    assert estimate_input_tokens(texts=["a" * 8], pdf_pages=3, rates=rates) == 2 + 3 * 560
    with pytest.raises(ValueError, match="negative"):
        estimate_input_tokens(pdf_pages=-1)


@given(st.integers(1, 20_000), st.integers(1, 20_000), st.integers(1, 20_000))
def test_image_tokens_never_shrink_as_an_image_grows(w: int, h: int, more: int) -> None:
    assert image_tokens(w + more, h) >= image_tokens(w, h)
    assert image_tokens(w, h + more) >= image_tokens(w, h)


def test_estimate_stats_report_error_and_bias() -> None:
    stats = EstimateStats()
    assert stats.mean_abs_error_ratio == 0.0
    stats.add(estimated=1100, actual=1000)
    stats.add(estimated=900, actual=1000)
    assert stats.calls == 2
    assert stats.mean_abs_error_ratio == pytest.approx(0.1)
    assert stats.bias_ratio == pytest.approx(0.0)
    stats.add(estimated=3000, actual=1000)
    assert stats.bias_ratio == pytest.approx(2000 / 3000)


# --- 429 bodies --------------------------------------------------------------------------
def test_a_per_minute_429_carries_its_delay_in_the_body() -> None:
    signal = parse_quota_error(PER_MINUTE_429)
    assert signal.retry_delay == 43.0
    assert not signal.per_day
    assert signal.quota_ids == ("GenerateContentPaidTierInputTokensPerModelPerMinute",)
    assert "retry in 43 s" in signal.describe()


def test_a_per_day_429_is_recognised_from_its_quota_id() -> None:
    body = json.loads(json.dumps(PER_MINUTE_429))
    violation = body["error"]["details"][0]["violations"][0]
    violation["quotaId"] = "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
    signal = parse_quota_error(json.dumps(body))  # JSON text works too
    assert signal.per_day
    assert "per-day quota" in signal.describe()


def test_the_sdk_error_details_shape_and_junk_are_read_safely() -> None:
    # google-genai's APIError.details is the response JSON, sometimes wrapped in a list.
    assert parse_quota_error([PER_MINUTE_429]).retry_delay == 43.0
    assert parse_quota_error(PER_MINUTE_429["error"]).retry_delay == 43.0
    for junk in (None, "not json", {"error": "nope"}, {"error": {"details": "x"}}, [1, 2]):
        signal = parse_quota_error(junk)
        assert signal.retry_delay is None
        assert not signal.per_day


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("43s", 43.0),
        ("0.5s", 0.5),
        ("1.250s", 1.25),
        (".5s", 0.5),
        ({"seconds": 2, "nanos": 500_000_000}, 2.5),
        ("43", None),
        ("-1s", None),
        ("s", None),
        (12, None),
    ],
)
def test_durations_parse_like_protobuf_json(value: object, seconds: float | None) -> None:
    assert parse_duration(value) == seconds


# --- quotas and configuration ------------------------------------------------------------
def test_model_quotas_parse_and_reject_nonsense() -> None:
    quotas = parse_model_quotas(" gemini-2.5-pro=150:2000000:1000, models/gemini-2.5-flash=10:20 ")
    assert quotas == {
        "gemini-2.5-pro": Quota(150, 2_000_000, 1000),
        "gemini-2.5-flash": Quota(10, 20),
    }
    assert parse_model_quotas("") == {}
    for bad in ("gemini=1", "gemini=1:x", "=1:2", "gemini=0:5", "a b=1:2", "g=1:2:3:4"):
        with pytest.raises(ValueError, match=r"rpm|positive|model"):
            parse_model_quotas(bad)


def test_model_names_drop_the_api_prefix_and_refuse_separators() -> None:
    assert check_model("models/gemini-2.5-flash") == "gemini-2.5-flash"
    for bad in ("", "models/", "a:b", "a b"):
        with pytest.raises(ValueError, match="model name"):
            check_model(bad)


def test_quota_day_follows_pacific_time_across_daylight_saving() -> None:
    winter = datetime(2026, 1, 15, 12, tzinfo=UTC)
    summer = datetime(2026, 7, 15, 12, tzinfo=UTC)
    assert day_offset_seconds("America/Los_Angeles", winter) == -8 * 3600
    assert day_offset_seconds("America/Los_Angeles", summer) == -7 * 3600
    assert day_offset_seconds("UTC", summer) == 0
    with pytest.raises(ValueError, match="unknown time zone"):
        day_offset_seconds("Mars/Olympus")


def test_config_picks_the_model_quota_and_rejects_impossible_settings() -> None:
    config = LimiterConfig(Quota(1600, 6_400_000), {"gemini-2.5-pro": Quota(150, 2_000_000)})
    assert config.quota_for("models/gemini-2.5-pro") == Quota(150, 2_000_000)
    assert config.quota_for("gemini-2.5-flash") == Quota(1600, 6_400_000)
    assert config.window_us == 60_000_000
    with pytest.raises(ValueError, match="window"):
        LimiterConfig(Quota(1, 1), window_seconds=0)
    with pytest.raises(ValueError, match="ticket ttl"):
        LimiterConfig(Quota(1, 1), max_poll_seconds=5, ticket_ttl_seconds=5)
    with pytest.raises(ValueError, match="decrease"):
        LimiterConfig(Quota(1, 1), decrease=1.0)
    with pytest.raises(ValueError, match="unknown time zone"):
        LimiterConfig(Quota(1, 1), day_timezone="Nowhere/Land")
    with pytest.raises(ValueError, match="positive"):
        Quota(0, 1)


def test_ratelimit_knows_nothing_of_documents_or_the_pool() -> None:
    """DESIGN.md: dependencies point one way, pool -> workers -> (ratelimit, capacity)."""
    import ast
    from pathlib import Path

    package = Path(__file__).parents[2] / "ratelimit"
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top not in ("pool", "workers", "capacity"), f"{source.name}: {name}"


# --- stamping at the wire and the ceiling (ratelimit/policy.py) ----------------------------
def test_the_wire_margin_grows_with_the_body() -> None:
    margin = WireMargin(seconds=0.1, bytes_per_second=2_000_000)
    assert margin.us(0) == 100_000
    assert margin.us(1_000_000) == 600_000  # 1 MB at 2 MB/s
    assert margin.us(-5) == 100_000
    with pytest.raises(ValueError, match="wire margin"):
        WireMargin(seconds=-1)


def test_the_arrival_bound_is_send_plus_margin_but_never_after_the_answer() -> None:
    margin = WireMargin(seconds=0.1, bytes_per_second=1e9)
    slow = arrival_bound_us(
        sent_after_us=300_000, answered_after_us=5_000_000, body_bytes=0, margin=margin
    )
    assert slow == 400_000  # a 5 s answer does not hold the slot: sent + margin
    fast = arrival_bound_us(
        sent_after_us=300_000, answered_after_us=350_000, body_bytes=0, margin=margin
    )
    assert fast == 350_000  # the answer came first: it is the bound
    unknown = arrival_bound_us(
        sent_after_us=None, answered_after_us=5_000_000, body_bytes=0, margin=margin
    )
    assert unknown == 5_000_000  # never marked: only the answer is certain


@given(
    sent=st.integers(0, 10**8),
    to_arrival=st.integers(0, 10**6),
    to_answer=st.integers(0, 10**8),
    body=st.integers(0, 10**8),
    seconds=st.floats(0, 2),
)
def test_the_stamp_is_never_before_the_arrival_when_the_margin_holds(
    sent: int, to_arrival: int, to_answer: int, body: int, seconds: float
) -> None:
    """Whatever the latencies, a request that arrives within the wire margin of its send
    and is answered after it arrives is stamped no earlier than its arrival."""
    margin = WireMargin(seconds=seconds, bytes_per_second=2_000_000)
    arrival = sent + min(to_arrival, margin.us(body))
    answered = arrival + to_answer
    bound = arrival_bound_us(
        sent_after_us=sent, answered_after_us=answered, body_bytes=body, margin=margin
    )
    assert arrival <= bound <= answered
    granted = 1_700_000_000_000_000
    stamp = settled_stamp_us(
        granted_us=granted,
        arrival_after_us=bound,
        now_us=granted + answered + 5,
        in_flight_stamp_us=granted + 300_000_000 + answered,
    )
    assert stamp >= granted + arrival


@given(
    sent=st.one_of(st.none(), st.integers(0, 10**9)),
    answered=st.integers(0, 10**9),
    flight=st.integers(10**6, 10**9),
    after_grant=st.integers(0, 2 * 10**9),
)
def test_an_arrival_bound_within_the_flight_needs_no_in_flight_stamp(
    sent: int | None, answered: int, flight: int, after_grant: int
) -> None:
    """settle_grant stamps min(granted + bound, now) without reading the slot: with the
    bound kept within the grant's flight that is the policy's stamp."""
    margin = WireMargin(seconds=0.25)
    bound = arrival_bound_us(
        sent_after_us=sent, answered_after_us=answered, body_bytes=0, margin=margin,
        flight_us=flight,
    )  # fmt: skip
    unbounded = arrival_bound_us(
        sent_after_us=sent, answered_after_us=answered, body_bytes=0, margin=margin
    )
    assert bound == min(unbounded, flight)
    granted = 1_700_000_000_000_000
    now = granted + after_grant
    assert min(granted + bound, now) == settled_stamp_us(
        granted_us=granted,
        arrival_after_us=unbounded,
        now_us=now,
        in_flight_stamp_us=granted + flight,
    )


def test_a_local_deadline_is_never_before_the_redis_moment() -> None:
    # granted at Redis time 1000 s, reply received at local 50 s: not before 1000.4 s
    assert local_deadline(50.0, 1_000_000_000, 1_000_400_000) == pytest.approx(50.4)
    assert local_deadline(50.0, 1_000_000_000, 999_000_000) == 50.0


def test_the_ceiling_recovers_additively_per_window() -> None:
    assert ceiling_factor(None, None, 10, 60, 0.15) == 1.0
    window = 60_000_000
    assert ceiling_factor(0.7, 0, window, window, 0.15) == pytest.approx(0.85)
    assert ceiling_factor(0.7, 0, 3 * window, window, 0.15) == 1.0
    policy = CeilingPolicy()
    assert policy.windows_to_reach(0.7, 0.95) == pytest.approx(25 / 15)
    assert CeilingPolicy(recovery_per_window=0.05).windows_to_reach(0.7, 0.95) == pytest.approx(5)
    assert policy.windows_to_reach(1.0, 0.95) == 0
    assert CeilingPolicy(recovery_per_window=0).windows_to_reach(0.5, 0.95) == float("inf")


def test_the_quota_a_429_names() -> None:
    assert quota_dimension(["GenerateRequestsPerMinutePerProjectPerModel"]) == "requests"
    assert quota_dimension(["GenerateContentPaidTierInputTokensPerModelPerMinute"]) == "tokens"
    assert quota_dimension([]) == ""
    both = ["GenerateRequestsPerMinutePerProjectPerModel", "InputTokensPerModelPerMinute"]
    assert quota_dimension(both) == ""


def test_a_429_lowers_the_ceiling_only_when_it_is_ours() -> None:
    policy = CeilingPolicy(decrease=0.7, own_share=0.9, lowest_factor=0.1)
    share = ceiling_share(
        requests=27, tokens=10, rpm_limit=30, tpm_limit=10**6, factor=1.0, dimension="requests"
    )
    assert share == pytest.approx(0.9)
    ours = policy.after_429(1.0, share=share, dimension="requests", per_day=False, new_round=True)
    assert ours[0] == pytest.approx(0.7)
    assert ours[1]
    theirs = policy.after_429(1.0, share=0.5, dimension="requests", per_day=False, new_round=True)
    assert theirs == (1.0, False)  # someone else's traffic: a pause, no shrink
    unnamed = policy.after_429(1.0, share=0.5, dimension="", per_day=False, new_round=True)
    assert unnamed[0] == pytest.approx(0.7)  # no quota named: it may be ours
    assert unnamed[1]
    same_round = policy.after_429(0.7, share=1.0, dimension="", per_day=False, new_round=False)
    assert same_round == (0.7, False)
    assert policy.after_429(0.7, share=1, dimension="", per_day=True, new_round=True)[1] is False
    assert policy.after_429(0.12, share=1, dimension="", per_day=False, new_round=True)[0] == 0.1
    with pytest.raises(ValueError, match="own share"):
        CeilingPolicy(own_share=0)


def test_config_checks_the_wire_settings() -> None:
    config = LimiterConfig(Quota(1, 1), wire_margin_seconds=0.2, wire_bytes_per_second=1e6)
    assert config.wire_margin.us(500_000) == 700_000
    assert config.ceiling_policy.recovery_per_window == 0.15
    for bad in ({"lead_seconds": -1}, {"max_flight_seconds": 0}, {"settle_delay_seconds": 2}):
        with pytest.raises(ValueError, match=r"lead|flight|settle"):
            LimiterConfig(Quota(1, 1), **bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="wire margin"):
        LimiterConfig(Quota(1, 1), wire_bytes_per_second=0)
