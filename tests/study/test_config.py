import pytest

from emofuse.errors import ConfigError
from emofuse.study import StudyConfig, load_study_config


def _config(**overrides):
    base = {
        "name": "t", "data": {"ravdess": "r", "fer2013": "f"}, "protocols": ["ravdess-6fold"],
        "models": [{"name": "a", "model": "voice_logreg"}, {"name": "b", "model": "voice_logreg", "params": {"C": 0.1}}],
        "fusions": [{"name": "ab", "strategy": "fusion_mean", "members": ["a", "b"]}],
    }
    base.update(overrides)
    return base


def test_a_valid_config_and_its_grid():
    config = StudyConfig.from_dict(_config(seeds=[0, 1]))
    assert [m.name for m in config.model_entries()] == ["a", "b"]
    assert config.fusion_protocols(config.fusions[0]) == ["ravdess-6fold"]
    assert config.fusion_seeds(config.fusions[0]) == [0, 1]
    again = StudyConfig.from_dict(config.to_dict())
    assert again == config


@pytest.mark.parametrize(("change", "message"), [
    ({"epochs": 3}, "unknown study option"),
    ({"models": [{"name": "a", "model": "voice_logreg", "lr": 1}]}, "unknown model entry 'a' option"),
    ({"models": [{"name": "a", "model": "text_gpt9"}]}, "unknown model 'text_gpt9'.*enabled: false"),
    ({"models": [{"name": "a", "model": "voice_cnn1d", "params": {"train": {"epochz": 1}}}]}, "unknown training option"),
    ({"protocols": ["ravdess-9fold"]}, "unknown protocol"),
    ({"data": {"fer2013": "f"}}, "needs data"),
    ({"fusions": [{"name": "ab", "strategy": "voice_logreg", "members": ["a", "b"]}]}, "strategy must be a fusion"),
    ({"fusions": [{"name": "ab", "strategy": "fusion_mean", "members": ["a", "zz"]}]}, "not a model entry"),
    ({"fusions": [{"name": "a", "strategy": "fusion_mean", "members": ["a", "b"]}]}, "unique"),
    ({"models": [{"name": "a", "model": "voice_logreg",
                  "references": {"ravdess-random": [{"metric": "wa", "value": 50, "source": "x"}]}},
                 {"name": "b", "model": "voice_logreg"}]}, "does not run on"),
    ({"models": [{"name": "a", "model": "voice_logreg",
                  "references": {"ravdess-6fold": [{"metric": "acc", "value": 50, "source": "x"}]}},
                 {"name": "b", "model": "voice_logreg"}]}, "reference metric"),
    ({"paired": {"voice": "a", "face": "b"}}, "paired.face: entry 'b' does not run on fer2013-official"),
])
def test_bad_configs_are_clear_errors(change, message):
    with pytest.raises(ConfigError, match=message):
        StudyConfig.from_dict(_config(**change))


def test_disabled_entries_may_name_models_not_yet_registered():
    config = StudyConfig.from_dict(_config(
        models=[{"name": "a", "model": "voice_logreg"}, {"name": "b", "model": "voice_logreg"},
                {"name": "t", "model": "text_gpt9", "enabled": False, "params": {"anything": 1}}],
        fusions=[{"name": "at", "strategy": "fusion_mean", "members": ["a", "t"], "enabled": False}]))
    assert [m.name for m in config.model_entries()] == ["a", "b"] and config.fusion_entries() == []
    with pytest.raises(ConfigError, match="member 't' is disabled"):
        StudyConfig.from_dict(_config(
            models=[{"name": "a", "model": "voice_logreg"}, {"name": "t", "model": "text_gpt9", "enabled": False}],
            fusions=[{"name": "at", "strategy": "fusion_mean", "members": ["a", "t"]}]))


def test_the_shipped_configs_load(tmp_path):
    from pathlib import Path

    configs = sorted((Path(__file__).resolve().parents[2] / "configs").glob("study_*.yaml"))
    assert {p.name for p in configs} >= {"study_smoke.yaml", "study_best.yaml", "study_reference_vision_voice.yaml",
                                         "study_reference_fusion.yaml"}
    for path in configs:
        config = load_study_config(path)
        assert config.model_entries(), path
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_study_config(bad)
