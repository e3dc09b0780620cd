"""Speaker normalisation: batch (a whole dataset) and running (clip after clip) follow one rule."""

from __future__ import annotations

import numpy as np
import pytest

from emofuse.features.speaker import RunningSpeakerStats, SpeakerNormaliser, group_by_speaker


def _speakers(rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    # Three speakers, each with their own offset and scale on top of shared content.
    rows, who = [], []
    for s, (offset, scale) in enumerate([(5.0, 1.0), (-3.0, 2.0), (0.5, 0.5)]):
        rows.append(rng.normal(size=(40, 4)) * scale + offset)
        who += [f"s{s}"] * 40
    return np.concatenate(rows), who


def test_speaker_normaliser_removes_speaker_offsets_and_shrinks_with_few_clips():
    rng = np.random.default_rng(0)
    feats, who = _speakers(rng)
    who_arr = np.array(who)

    def gap(x: np.ndarray) -> float:  # how far apart speakers s0 and s1 sit on average
        return float(np.abs(x[who_arr == "s0"].mean(axis=0) - x[who_arr == "s1"].mean(axis=0)).max())

    exact = SpeakerNormaliser(shrinkage=0.0).fit_population(feats, who).transform(feats, who)
    assert gap(exact) < 1e-9  # each speaker's own mean maps onto the population's
    norm = SpeakerNormaliser(shrinkage=8.0).fit_population(feats, who)
    many = norm.transform(feats, who)  # 40 clips each: weight 40 / 48
    few = norm.transform(feats, who, {s: feats[who_arr == s][:2] for s in ("s0", "s1", "s2")})  # 2 / 10
    assert gap(many) < gap(few) < gap(feats)
    assert gap(many) == pytest.approx(gap(feats) * 8 / 48, rel=0.35)


def test_running_stats_equal_the_batch_rule():
    rng = np.random.default_rng(1)
    feats, who = _speakers(rng)
    norm = SpeakerNormaliser(shrinkage=4.0, min_clips_for_scale=8).fit_population(feats, who)
    running = RunningSpeakerStats(norm)
    np.testing.assert_array_equal(running.adapt(feats[0]), feats[0])  # nothing heard yet: unchanged
    for k in (3, 12):
        running = RunningSpeakerStats(norm)
        running.update(feats[:k])
        batch = norm.transform(feats[:1], ["s0"], {"s0": feats[:k]})
        np.testing.assert_allclose(running.adapt(feats[:1]), batch, rtol=1e-6, atol=1e-9)




def test_group_by_speaker_keeps_first_appearance_order():
    groups = group_by_speaker(["b", "a", "b", 3])
    assert list(groups) == ["b", "a", "3"] and groups["b"].tolist() == [0, 2]
