"""The transformers side of the engine tests: the rules an engine's greedy output is compared with transformers' by
(`tf_scaffold.testing.harness`, which every generated repo's tests run on)."""

from tf_scaffold.testing import harness


def seq(tokens, tops):
    return harness.Sequence(tokens=tokens, top_logprobs=tops)


def test_exact_rule():
    ref = seq([5, 6, 7], [{5: -1.0, 9: -2.0}, {6: -0.5}, {7: -0.1}])
    assert harness.compare_exact(ref, seq([5, 6, 7], [{5: -1.0005}, {6: -0.5}, {7: -0.1}])) is None
    msg = harness.compare_exact(ref, seq([5, 9, 7], [{5: -1.0}, {9: -0.5}, {7: -0.1}]))
    assert "step 1" in msg
    msg = harness.compare_exact(ref, seq([5, 6, 7], [{5: -1.1}, {6: -0.5}, {7: -0.1}]))
    assert "logprob of token 5 at step 0" in msg
    assert harness.compare_exact(ref, seq([5, 6], [{5: -1.0}, {6: -0.5}])) is not None  # shorter


def test_top_logprobs_rule():
    ref = seq([5, 6, 7], [{5: -1.0}, {6: -0.5, 8: -0.6}, {7: -0.1}])
    # diverges at step 1 but each token is in the other's top list: accepted (vLLM's check_logprobs_close)
    ok = seq([5, 8, 1], [{5: -1.0}, {8: -0.5, 6: -0.55}, {1: -0.1}])
    assert harness.compare_top_logprobs(ref, ok) is None
    bad = seq([5, 3, 1], [{5: -1.0}, {3: -0.5, 6: -0.55}, {1: -0.1}])
    assert "step 1" in harness.compare_top_logprobs(ref, bad)
    assert harness.compare(ref, ok, exact=True) is not None  # fp32 is stricter
    assert harness.compare(ref, ok, exact=False) is None


def test_exact_rule_needs_the_engine_logprob_of_each_token():
    ref = seq([5, 6], [{5: -1.0}, {6: -0.5}])
    assert "no logprob for token 6" in harness.compare_exact(ref, seq([5, 6], [{5: -1.0}, {9: -0.5}]))


def test_sglang_sequence():
    meta = {
        "output_token_logprobs": [[-0.5, 7, None], [-0.25, 9, None]],
        "output_top_logprobs": [[[-0.5, 7, None], [-1.5, 3, None]], [[-0.25, 9, None]]],
    }
    got = harness.sglang_sequence(meta)
    assert got.tokens == [7, 9]
    assert got.top_logprobs == [{7: -0.5, 3: -1.5}, {9: -0.25}]


def test_first_difference():
    assert harness.first_difference([1, 2], [1, 2]) is None
    assert harness.first_difference([1, 2], [1, 3]) == 1
    assert harness.first_difference([1, 2], [1, 2, 3]) == 2
