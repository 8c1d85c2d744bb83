import pydantic
import pytest

from selfcodealign.seeds import SeedsConfig


def test_every_setting_is_documented_and_typos_are_rejected():
    for name, field in SeedsConfig.model_fields.items():
        assert field.description, name
    with pytest.raises(pydantic.ValidationError):
        SeedsConfig(max_seed=3)
    with pytest.raises(pydantic.ValidationError):
        SeedsConfig(dedup_threshold=0)
